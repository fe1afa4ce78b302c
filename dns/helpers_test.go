package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a dns.ResponseWriter that keeps what the handler wrote, after a round trip
// through the wire format so that tests see exactly what a client would: the model is
// CoreDNS's dnstest.Recorder.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	size   int // bytes on the wire
	writes int
}

// newRecorder is a writer for a client at ip talking over network ("udp" or "tcp").
func newRecorder(network, ip string) *recorder {
	addr := netip.MustParseAddr(ip)
	if network == "tcp" {
		return &recorder{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 40000))}
	}
	return &recorder{remote: net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 40000))}
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	wire, err := m.Pack()
	if err != nil {
		return fmt.Errorf("recorder: pack: %w", err)
	}
	if _, ok := r.remote.(*net.UDPAddr); ok && len(wire) > dns.MaxMsgSize {
		return fmt.Errorf("recorder: %d bytes do not fit a datagram", len(wire))
	}
	got := new(dns.Msg)
	if err := got.Unpack(wire); err != nil {
		return fmt.Errorf("recorder: unpack: %w", err)
	}
	r.msg, r.size = got, len(wire)
	r.writes++
	return nil
}
func (r *recorder) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), r.WriteMsg(m)
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// fixture is the cluster most tests answer from.
func fixture() []Service {
	ep := func(host, addr string, ready bool) Endpoint {
		return Endpoint{Hostname: host, Addr: netip.MustParseAddr(addr), Ready: ready}
	}
	big := Service{Namespace: "shop", Name: "big"}
	for i := range 100 {
		big.Endpoints = append(big.Endpoints, ep(fmt.Sprintf("big-%d", i), fmt.Sprintf("10.1.0.%d", i+1), true))
	}
	return []Service{
		{Namespace: "default", Name: "web", Ports: []Port{{Name: "http", Port: 8080}, {Port: 9090}},
			Endpoints: []Endpoint{
				ep("web-1", "10.0.0.1", true),
				ep("web-2", "10.0.0.2", true),
				ep("web-3", "10.0.0.3", false),
				ep("web-4", "10.0.0.1", true), // shares web-1's node under host networking
			}},
		{Namespace: "default", Name: "db", Headless: true, Ports: []Port{{Name: "pg", Protocol: "TCP", Port: 5432}},
			Endpoints: []Endpoint{
				ep("db-1", "10.0.1.2", true),
				ep("db-0", "10.0.1.1", true),
				ep("db-2", "10.0.1.3", false),
			}},
		{Namespace: "default", Name: "six", Ports: []Port{{Name: "dns", Protocol: "udp", Port: 53}},
			Endpoints: []Endpoint{ep("six-0", "fd00::1", true), ep("six-1", "10.0.2.1", true)}},
		{Namespace: "default", Name: "v6only", Endpoints: []Endpoint{ep("v6only-0", "fd00::2", true)}},
		{Namespace: "default", Name: "empty", Ports: []Port{{Name: "http", Port: 80}}},
		{Namespace: "default", Name: "gone", Headless: true, Ports: []Port{{Name: "http", Port: 80}},
			Endpoints: []Endpoint{ep("gone-0", "10.0.3.1", false)}},
		big,
	}
}

// newTestServer returns a Server on a free loopback port (not serving: tests call ServeDNS
// or Serve themselves), answering from services.
func newTestServer(t testing.TB, cfg Config, services []Service) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	snap, err := NewSnapshot(cfg.Domain, services)
	if err != nil {
		t.Fatalf("NewSnapshot: %v", err)
	}
	s.Swap(snap)
	return s
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = nil
	return cfg
}

// serve runs s.Serve until the test ends and checks that it stops cleanly.
func serve(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// query builds a recursive query for name and type, with EDNS0 when ednsSize > 0.
func query(name string, qtype uint16, ednsSize uint16) *dns.Msg {
	m := new(dns.Msg).SetQuestion(name, qtype)
	if ednsSize > 0 {
		m.SetEdns0(ednsSize, true)
	}
	return m
}

// show renders records as "owner TYPE rdata", sorted, without TTL and class.
func show(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		data := strings.TrimPrefix(rr.String(), rr.Header().String())
		out = append(out, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype]+" "+data)
	}
	slices.Sort(out)
	return out
}

// owners renders records as "owner TYPE", for sections whose data a test does not pin.
func owners(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
	}
	return out
}
