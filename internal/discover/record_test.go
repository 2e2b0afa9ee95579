package discover

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/mdns/v2"
)

var laptop = Announcement{Grid: "1a2b3c4d", Node: "laptop", Addr: "192.168.1.20:7070", Hub: true}

func TestCheck(t *testing.T) {
	with := func(f func(*Announcement)) Announcement { a := laptop; f(&a); return a }
	tests := []struct {
		name string
		a    Announcement
		ok   bool
	}{
		{"hub", laptop, true},
		{"not hub", with(func(a *Announcement) { a.Hub = false }), true},
		{"longest node", with(func(a *Announcement) { a.Node = "n" + strings.Repeat("a_.-", 15) + "zz" }), true},
		{"host name", with(func(a *Announcement) { a.Addr = "nas.home.arpa:7070" }), true},
		{"one-label host", with(func(a *Announcement) { a.Addr = "nas:1" }), true},
		{"IPv6", with(func(a *Announcement) { a.Addr = "[fd00::5]:65535" }), true},
		{"loopback", with(func(a *Announcement) { a.Addr = "127.0.0.1:7070" }), true},

		{"grid short", with(func(a *Announcement) { a.Grid = "1a2b3c4" }), false},
		{"grid upper", with(func(a *Announcement) { a.Grid = "1A2B3C4D" }), false},
		{"grid not hex", with(func(a *Announcement) { a.Grid = "1a2b3c4g" }), false},
		{"node empty", with(func(a *Announcement) { a.Node = "" }), false},
		{"node too long", with(func(a *Announcement) { a.Node = strings.Repeat("a", 64) }), false},
		{"node leading dot", with(func(a *Announcement) { a.Node = ".laptop" }), false},
		{"node space", with(func(a *Announcement) { a.Node = "my laptop" }), false},
		{"node non-ASCII", with(func(a *Announcement) { a.Node = "café" }), false},
		{"node is an IP", with(func(a *Announcement) { a.Node = "10.0.0.1" }), false},
		{"addr empty", with(func(a *Announcement) { a.Addr = "" }), false},
		{"addr no port", with(func(a *Announcement) { a.Addr = "192.168.1.20" }), false},
		{"addr port 0", with(func(a *Announcement) { a.Addr = "192.168.1.20:0" }), false},
		{"addr port too big", with(func(a *Announcement) { a.Addr = "192.168.1.20:65536" }), false},
		{"addr port name", with(func(a *Announcement) { a.Addr = "192.168.1.20:http" }), false},
		{"addr port signed", with(func(a *Announcement) { a.Addr = "192.168.1.20:+80" }), false},
		{"addr no host", with(func(a *Announcement) { a.Addr = ":7070" }), false},
		{"addr unspecified", with(func(a *Announcement) { a.Addr = "0.0.0.0:7070" }), false},
		{"addr IPv6 unspecified", with(func(a *Announcement) { a.Addr = "[::]:7070" }), false},
		{"addr multicast", with(func(a *Announcement) { a.Addr = "224.0.0.251:7070" }), false},
		{"addr zone", with(func(a *Announcement) { a.Addr = "[fe80::1%eth0]:7070" }), false},
		{"addr IPv4 in brackets", with(func(a *Announcement) { a.Addr = "[10.0.0.1]:7070" }), false},
		{"addr name in brackets", with(func(a *Announcement) { a.Addr = "[nas]:7070" }), false},
		{"addr bad label", with(func(a *Announcement) { a.Addr = "-nas.home:7070" }), false},
		{"addr empty label", with(func(a *Announcement) { a.Addr = "nas..home:7070" }), false},
		{"addr underscore", with(func(a *Announcement) { a.Addr = "my_nas:7070" }), false},
		{"addr control", with(func(a *Announcement) { a.Addr = "nas\n:7070" }), false},
		{"addr label too long", with(func(a *Announcement) { a.Addr = strings.Repeat("a", 64) + ":7070" }), false},
		{"addr longest", with(func(a *Announcement) { a.Addr = strings.Repeat("a.", 122) + "a:7070" }), true},
		{"addr too long for TXT", with(func(a *Announcement) { a.Addr = strings.Repeat("a.", 122) + "ab:7070" }), false},
		{"addr name too long", with(func(a *Announcement) { a.Addr = strings.Repeat("a.", 127) + "a:7070" }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.check()
			if tt.ok && err != nil {
				t.Fatalf("check(%+v) = %v, want ok", tt.a, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("check(%+v) = %v, want ErrInvalid", tt.a, err)
			}
		})
	}
}

// entries turns "k=v" strings into TXT entries the way pion decodes them
// ("k" alone is a key with no value).
func entries(ss ...string) []mdns.TXTEntry {
	var es []mdns.TXTEntry
	for _, s := range ss {
		if k, v, ok := strings.Cut(s, "="); ok {
			es = append(es, mdns.NewTXTString(k, v))
		} else {
			es = append(es, mdns.NewTXTFlag(s))
		}
	}
	return es
}

func TestParseTXT(t *testing.T) {
	tests := []struct {
		name string
		txt  []mdns.TXTEntry
		want Announcement // zero: refused
	}{
		{"as announced", txt(laptop), laptop},
		{"any order, unknown keys ignored",
			entries("addr=nas:7071", "color=blue", "hub=0", "node=nas", "flag", "grid=5e6f7a8b", "txtvers=1"),
			Announcement{Grid: "5e6f7a8b", Node: "nas", Addr: "nas:7071"}},
		{"keys are case-insensitive",
			entries("TXTVERS=1", "Grid=1a2b3c4d", "NODE=laptop", "Hub=1", "ADDR=192.168.1.20:7070"), laptop},
		{"empty", nil, Announcement{}},
		{"no txtvers", entries("grid=1a2b3c4d", "node=laptop", "hub=1", "addr=192.168.1.20:7070"), Announcement{}},
		{"newer txtvers", entries("txtvers=2", "grid=1a2b3c4d", "node=laptop", "hub=1", "addr=192.168.1.20:7070"), Announcement{}},
		{"no hub", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "addr=192.168.1.20:7070"), Announcement{}},
		{"hub yes", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub=yes", "addr=192.168.1.20:7070"), Announcement{}},
		{"hub flag", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub", "addr=192.168.1.20:7070"), Announcement{}},
		{"no addr", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub=1"), Announcement{}},
		{"empty addr", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub=1", "addr="), Announcement{}},
		{"bad grid", entries("txtvers=1", "grid=1a2b3c4dX", "node=laptop", "hub=1", "addr=192.168.1.20:7070"), Announcement{}},
		{"bad node", entries("txtvers=1", "grid=1a2b3c4d", "node=lap\x00top", "hub=1", "addr=192.168.1.20:7070"), Announcement{}},
		{"oversized node", entries("txtvers=1", "grid=1a2b3c4d", "node="+strings.Repeat("x", 250), "hub=1", "addr=192.168.1.20:7070"), Announcement{}},
		{"repeated key", entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub=1", "addr=192.168.1.20:7070", "Addr=10.6.6.6:7070"), Announcement{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTXT(tt.txt)
			if tt.want == (Announcement{}) {
				if !errors.Is(err, ErrInvalid) || got != (Announcement{}) {
					t.Fatalf("parseTXT = %+v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseTXT = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestFromEvent(t *testing.T) {
	ev := func(service, domain string) mdns.ServiceEvent {
		return mdns.ServiceEvent{Instance: mdns.ServiceInstance{
			Instance: label(laptop), Service: service, Domain: domain, Port: 7070, Text: txt(laptop)}}
	}
	tests := []struct {
		name string
		ev   mdns.ServiceEvent
		ok   bool
	}{
		{"tern", ev("_tern._tcp", "local"), true},
		{"case-insensitive", ev("_TERN._tcp", "Local"), true},
		// pion's browser hands over any instance it heard, of any type.
		{"other service", ev("_http._tcp", "local"), false},
		{"udp", ev("_tern._udp", "local"), false},
		{"other domain", ev("_tern._tcp", "example.com"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fromEvent(tt.ev)
			if tt.ok && (err != nil || got != laptop) {
				t.Fatalf("fromEvent = %+v, %v; want %+v", got, err, laptop)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Fatalf("fromEvent = %+v, %v; want ErrInvalid", got, err)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	tests := []struct{ node, want string }{
		{"laptop", "laptop-1a2b3c4d"},
		{"my.nas_2", "my-nas-2-1a2b3c4d"},
		{strings.Repeat("a", 63), strings.Repeat("a", 54) + "-1a2b3c4d"},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			got := label(Announcement{Grid: "1a2b3c4d", Node: tt.node})
			if got != tt.want || len(got) > 63 {
				t.Fatalf("label(%q) = %q, want %q (≤ 63 bytes)", tt.node, got, tt.want)
			}
		})
	}
}

// FuzzParseTXT feeds parseTXT TXT records as they come off the wire: the
// input is TXT rdata (length-prefixed strings), split into keys and values
// the way pion does. Whatever parses must be a valid announcement that
// survives being announced and read back unchanged.
func FuzzParseTXT(f *testing.F) {
	rdata := func(es []mdns.TXTEntry) []byte {
		var b []byte
		for _, e := range es {
			s := e.Key
			if e.Value != nil {
				s += "=" + string(e.Value)
			}
			b = append(b, byte(len(s)))
			b = append(b, s...)
		}
		return b
	}
	f.Add(rdata(txt(laptop)))
	f.Add(rdata(txt(Announcement{Grid: "5e6f7a8b", Node: "nas.home", Addr: "[fd00::5]:7071"})))
	f.Add(rdata(entries("txtvers=1", "grid=1a2b3c4d", "node=laptop", "hub", "addr=nas:1", "Grid=00000000")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var es []mdns.TXTEntry
		for len(b) > 0 {
			n := min(int(b[0]), len(b)-1)
			es = append(es, entries(string(b[1:1+n]))...)
			b = b[1+n:]
		}
		a, err := parseTXT(es)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || a != (Announcement{}) {
				t.Fatalf("parseTXT = %+v, %v", a, err)
			}
			return
		}
		if err := a.check(); err != nil {
			t.Fatalf("parseTXT accepted %+v: %v", a, err)
		}
		if l := label(a); len(l) > 63 || strings.ContainsAny(l, "._") {
			t.Fatalf("label %q is not one DNS label", l)
		}
		for _, e := range txt(a) {
			if n := len(e.Key) + 1 + len(e.Value); n > 255 {
				t.Fatalf("TXT string %s= is %d bytes", e.Key, n)
			}
		}
		if again, err := parseTXT(txt(a)); err != nil || again != a {
			t.Fatalf("announce %+v, read back %+v, %v", a, again, err)
		}
	})
}
