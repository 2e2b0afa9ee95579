package discover

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/pion/mdns/v2"
)

// Announcement is what an agent tells the LAN about itself.
type Announcement struct {
	Grid string `json:"grid"` // the grid's id (8 lowercase hex digits)
	Node string `json:"node"` // the node's name
	Addr string `json:"addr"` // host:port the agent is reached at (its --advertise)
	Hub  bool   `json:"hub"`  // whether this agent is the grid's hub, the one to --join
}

// ErrInvalid means an announcement, ours or one received, breaks the rules
// below; received ones are dropped.
var ErrInvalid = errors.New("invalid announcement")

const (
	// service is the DNS-SD service type, without the domain pion adds.
	service = "_tern._tcp"
	domain  = "local"
	txtVers = "1"

	// maxAddr is what fits a TXT string (255 bytes) after "addr=".
	maxAddr = 255 - len("addr=")

	// maxNodeInLabel leaves room for "-" and the grid id in one 63-byte label.
	maxNodeInLabel = 63 - 1 - 8
)

var (
	// The same rules as pki's for node names and grid ids: a name that could
	// not be in a node certificate cannot be a node's.
	nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	gridRE = regexp.MustCompile(`^[0-9a-f]{8}$`)
)

// check reports the first rule a breaks. Values are quoted and cut short in
// errors because they may come from anyone on the link.
func (a Announcement) check() error {
	if !gridRE.MatchString(a.Grid) {
		return fmt.Errorf("%w: grid %.20q is not 8 lowercase hex digits", ErrInvalid, a.Grid)
	}
	if !nameRE.MatchString(a.Node) || net.ParseIP(a.Node) != nil {
		return fmt.Errorf("%w: bad node name %.70q", ErrInvalid, a.Node)
	}
	if err := checkAddr(a.Addr); err != nil {
		return fmt.Errorf("%w: addr %.70q: %v", ErrInvalid, a.Addr, err)
	}
	return nil
}

// checkAddr accepts what another device can dial: HOST:PORT with a port in
// 1..65535 and a host that is a usable IP (no zone, which names an
// interface of the sender's, not ours) or a DNS host name, short enough to
// fit a TXT string as "addr=...".
func checkAddr(s string) error {
	if len(s) > maxAddr {
		return errors.New("too long")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not HOST:PORT")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return errors.New("bad port")
	}
	bracketed := strings.HasPrefix(s, "[")
	if ip, err := netip.ParseAddr(host); err == nil {
		switch {
		case ip.Zone() != "":
			return errors.New("address has a zone")
		case ip.IsUnspecified(), ip.IsMulticast():
			return errors.New("address cannot be dialed")
		case bracketed != ip.Is6():
			return errors.New("only IPv6 addresses go in brackets")
		}
		return nil
	}
	if bracketed {
		return errors.New("only IPv6 addresses go in brackets")
	}
	return checkHostname(host)
}

// checkHostname accepts letter-digit-hyphen labels (RFC 1123).
func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return errors.New("bad host name length")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("bad host name")
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return errors.New("bad host name")
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// label is a's DNS-SD instance name and host label: one DNS label, because
// pion escapes a dot in an instance name as `\.` in the label text, which
// other implementations read as two labels.
func label(a Announcement) string {
	node := []byte(a.Node[:min(len(a.Node), maxNodeInLabel)])
	for i, c := range node {
		if !isAlnum(c) && c != '-' {
			node[i] = '-'
		}
	}
	return string(node) + "-" + a.Grid
}

// port is the port of a checked a.Addr, for the SRV record.
func port(a Announcement) uint16 {
	_, p, _ := net.SplitHostPort(a.Addr)
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

// txt is a's TXT record.
func txt(a Announcement) []mdns.TXTEntry {
	hub := "0"
	if a.Hub {
		hub = "1"
	}
	return []mdns.TXTEntry{
		mdns.NewTXTString("txtvers", txtVers),
		mdns.NewTXTString("grid", a.Grid),
		mdns.NewTXTString("node", a.Node),
		mdns.NewTXTString("hub", hub),
		mdns.NewTXTString("addr", a.Addr),
	}
}

// parseTXT reads an Announcement from a received TXT record. Keys are
// case-insensitive (RFC 6763 §6.4); a repeated key is refused rather than
// guessed at, and unknown keys are ignored.
func parseTXT(entries []mdns.TXTEntry) (Announcement, error) {
	var a Announcement
	var vers, hub string
	seen := map[string]bool{}
	for _, e := range entries {
		k := strings.ToLower(e.Key)
		var dst *string
		switch k {
		case "txtvers":
			dst = &vers
		case "grid":
			dst = &a.Grid
		case "node":
			dst = &a.Node
		case "hub":
			dst = &hub
		case "addr":
			dst = &a.Addr
		default:
			continue
		}
		if seen[k] {
			return Announcement{}, fmt.Errorf("%w: TXT key %s repeated", ErrInvalid, k)
		}
		seen[k] = true
		if e.Value == nil {
			return Announcement{}, fmt.Errorf("%w: TXT key %s has no value", ErrInvalid, k)
		}
		*dst = string(e.Value)
	}
	if vers != txtVers {
		return Announcement{}, fmt.Errorf("%w: txtvers %.10q, want %s", ErrInvalid, vers, txtVers)
	}
	switch hub {
	case "1":
		a.Hub = true
	case "0":
	default:
		return Announcement{}, fmt.Errorf("%w: hub %.10q is not 0 or 1", ErrInvalid, hub)
	}
	if err := a.check(); err != nil {
		return Announcement{}, err
	}
	return a, nil
}

// fromEvent is the Announcement in a service pion resolved, which may be of
// any type: pion's browser reports every complete instance it hears.
func fromEvent(ev mdns.ServiceEvent) (Announcement, error) {
	if !strings.EqualFold(ev.Instance.Service, service) || !strings.EqualFold(ev.Instance.Domain, domain) {
		return Announcement{}, fmt.Errorf("%w: service %.40q in domain %.40q is not %s.%s",
			ErrInvalid, ev.Instance.Service, ev.Instance.Domain, service, domain)
	}
	return parseTXT(ev.Instance.Text)
}
