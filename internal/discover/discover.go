package discover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// DefaultWait is how long Browse listens when given no wait. Answers on a
// quiet wired link come back within milliseconds; the rest is for Wi-Fi,
// which may hold multicast for a sleeping station, and for a lost first
// query (pion repeats it every second).
const DefaultWait = 2 * time.Second

// maxFound bounds what one Browse keeps, whatever the link sends.
const maxFound = 256

// rescanInterval is how often an Announcer looks for changed interfaces. A
// variable so that tests can shorten it.
var rescanInterval = 10 * time.Second

// errNoInterface means the host has no interface mDNS can use.
var errNoInterface = errors.New("no network interface that is up, multicast-capable and has an address")

// Announcer answers mDNS queries for one agent until its context ends or it
// is closed.
type Announcer struct {
	a    Announcement
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	conn    *mdns.Conn // nil while nothing can be announced
	scanned bool
	ifs     string // the interfaces last seen (fingerprint; "" for none)
	err     error  // from closing conn at the end
}

// Announce answers mDNS queries for a until ctx ends or the Announcer is
// closed. It announces on every interface that is up, multicast-capable and
// not loopback, skipping the others, and follows interfaces that come and go;
// it fails only if a is invalid or nothing can be announced now.
func Announce(ctx context.Context, a Announcement, log *slog.Logger) (*Announcer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	an := &Announcer{
		a:    a,
		log:  log.With("mdns", label(a)+"."+service+"."+domain),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := an.rescan(); err != nil {
		return nil, fmt.Errorf("announce %s: %w", label(a), err)
	}
	go an.run(ctx)
	return an, nil
}

// Close stops answering. It is safe to call more than once.
func (an *Announcer) Close() error {
	an.once.Do(func() { close(an.stop) })
	<-an.done
	return an.err
}

func (an *Announcer) run(ctx context.Context) {
	defer close(an.done)
	t := time.NewTicker(rescanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			an.shutdown()
			return
		case <-an.stop:
			an.shutdown()
			return
		case <-t.C:
			if err := an.rescan(); err != nil {
				an.log.Warn("LAN announcement after an interface change failed", "err", err)
			}
		}
	}
}

func (an *Announcer) shutdown() {
	an.mu.Lock()
	defer an.mu.Unlock()
	if an.conn != nil {
		if err := an.conn.Close(); err != nil {
			an.err = fmt.Errorf("announce %s: close: %w", label(an.a), err)
		}
		an.conn = nil
	}
}

// rescan restarts the responder when the usable interfaces have changed,
// since pion answers only on those it started with. The new responder
// starts before the old one stops so that no query goes unanswered; both
// share port 5353. Nothing changes, and nothing is reported again, while the
// interfaces stay as they were, even if starting on them failed: the old
// responder (if any) goes on.
func (an *Announcer) rescan() error {
	ifs, fp, err := interfaces()
	an.mu.Lock()
	defer an.mu.Unlock()
	if an.scanned && fp == an.ifs {
		return nil
	}
	an.scanned, an.ifs = true, fp
	var conn *mdns.Conn
	if err == nil {
		conn, err = an.start(ifs)
	}
	if err != nil {
		if errors.Is(err, errNoInterface) && an.conn != nil {
			an.conn.Close()
			an.conn = nil
		}
		return err
	}
	if an.conn != nil {
		an.conn.Close()
	}
	an.conn = conn
	an.log.Info("announcing on the LAN", "interfaces", names(ifs), "addr", an.a.Addr, "hub", an.a.Hub)
	return nil
}

func (an *Announcer) start(ifs []net.Interface) (*mdns.Conn, error) {
	l := label(an.a)
	svc := mdns.ServiceInstance{
		Instance: l,
		Service:  service,
		Domain:   domain,
		Host:     l + "." + domain + ".",
		Port:     port(an.a),
		Text:     txt(an.a),
	}
	return open(ifs, an.log, mdns.WithLocalNames(l+"."+domain), mdns.WithService(svc))
}

// Browse asks the LAN for tern agents and returns the distinct valid
// announcements heard within wait (DefaultWait if wait <= 0), sorted by grid,
// node and address. Invalid answers are dropped and logged at debug level
// on slog's default logger. It fails if ctx ends first or no interface can
// carry the query.
func Browse(ctx context.Context, wait time.Duration) ([]Announcement, error) {
	if wait <= 0 {
		wait = DefaultWait
	}
	log := slog.Default().With("mdns", "browse "+service+"."+domain)
	ifs, _, err := interfaces()
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	conn, err := open(ifs, log)
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	defer conn.Close()

	var mu sync.Mutex
	found := map[Announcement]bool{}
	conn.OnServiceDiscovered(func(ev mdns.ServiceEvent) {
		a, err := fromEvent(ev)
		if err != nil {
			log.Debug("ignoring an answer", "instance", fmt.Sprintf("%.70q", ev.Instance.Instance), "from", ev.Addr, "err", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if len(found) < maxFound {
			found[a] = true
		}
	})
	bctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := conn.Browse(bctx, service); err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	log.Debug("asking", "interfaces", names(ifs), "wait", wait)
	<-bctx.Done()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	// Closing stops the handler before found is read.
	if err := conn.Close(); err != nil {
		log.Debug("close", "err", err)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Announcement, 0, len(found))
	for a := range found {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Announcement) int {
		return cmp.Or(cmp.Compare(x.Grid, y.Grid), cmp.Compare(x.Node, y.Node), cmp.Compare(x.Addr, y.Addr),
			cmp.Compare(boolInt(x.Hub), boolInt(y.Hub)))
	})
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// interfaces lists what mDNS can use: up, multicast-capable, not loopback
// (another program on this host hears us through multicast loopback on the
// real interfaces), with an address. The fingerprint changes whenever any of
// that does; it is "" when the list is empty or cannot be read.
func interfaces() ([]net.Interface, string, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, "", fmt.Errorf("list interfaces: %w", err)
	}
	var use []net.Interface
	var fp strings.Builder
	for _, ifc := range all {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil || len(addrs) == 0 {
			continue
		}
		use = append(use, ifc)
		fmt.Fprintf(&fp, "%d %s %v;", ifc.Index, ifc.Name, addrs)
	}
	if len(use) == 0 {
		return nil, "", errNoInterface
	}
	return use, fp.String(), nil
}

func names(ifs []net.Interface) []string {
	var n []string
	for _, ifc := range ifs {
		n = append(n, ifc.Name)
	}
	return n
}

// open starts a pion mDNS responder and querier on ifs, over IPv4 and, where
// the host has it, IPv6. Both sockets bind the mDNS port with address reuse
// (Go does that for a multicast listen address, binding the wildcard), so
// several agents and other responders (avahi, Bonjour) share it.
func open(ifs []net.Interface, log *slog.Logger, opts ...mdns.ServerOption) (*mdns.Conn, error) {
	var p4 *ipv4.PacketConn
	var p6 *ipv6.PacketConn
	l4, err4 := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err4 == nil {
		p4 = ipv4.NewPacketConn(l4)
	}
	l6, err6 := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353})
	if err6 == nil {
		p6 = ipv6.NewPacketConn(l6)
	}
	if p4 == nil && p6 == nil {
		return nil, fmt.Errorf("listen on the mDNS port: %w", errors.Join(err4, err6))
	}
	opts = append([]mdns.ServerOption{
		mdns.WithName("tern"),
		mdns.WithLoggerFactory(pionLogs{log}),
		mdns.WithInterfaces(ifs...),
		// Refreshing keeps long-lived caches warm; every use here is a
		// one-shot browse or a responder, which caches nothing it needs.
		mdns.WithCacheRefresh(false),
	}, opts...)
	conn, err := mdns.NewServer(p4, p6, opts...)
	if err != nil {
		if l4 != nil {
			l4.Close()
		}
		if l6 != nil {
			l6.Close()
		}
		return nil, fmt.Errorf("start mDNS on %s: %w", strings.Join(names(ifs), ","), err)
	}
	return conn, nil
}

// pionLogs sends pion's logs to slog at debug level whatever pion's own
// level: its warnings are per packet or per interface (a malformed packet
// from some device, a send that failed on one link), which on a busy LAN
// would flood an agent's log; what matters is logged by this package.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLog{p.log.With("pion", scope)}
}

type pionLog struct{ log *slog.Logger }

func (p pionLog) logf(level, format string, args ...any) {
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug(fmt.Sprintf(format, args...), "pion_level", level)
	}
}

func (p pionLog) Trace(string)                 {}
func (p pionLog) Tracef(string, ...any)        {}
func (p pionLog) Debug(msg string)             { p.logf("debug", "%s", msg) }
func (p pionLog) Debugf(f string, args ...any) { p.logf("debug", f, args...) }
func (p pionLog) Info(msg string)              { p.logf("info", "%s", msg) }
func (p pionLog) Infof(f string, args ...any)  { p.logf("info", f, args...) }
func (p pionLog) Warn(msg string)              { p.logf("warn", "%s", msg) }
func (p pionLog) Warnf(f string, args ...any)  { p.logf("warn", f, args...) }
func (p pionLog) Error(msg string)             { p.logf("error", "%s", msg) }
func (p pionLog) Errorf(f string, args ...any) { p.logf("error", f, args...) }
