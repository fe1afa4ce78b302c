package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clientTimeout bounds every test query; a reply that the server owes never takes that long.
const clientTimeout = 5 * time.Second

// startUpstream runs h on 127.0.0.1, UDP and TCP, standing in for the host's resolver.
func startUpstream(t testing.TB, h dns.HandlerFunc) string {
	t.Helper()
	udp, tcp, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := startMiekg(&dns.Server{PacketConn: udp, Handler: h})
	c := startMiekg(&dns.Server{Listener: tcp, Handler: h})
	t.Cleanup(func() { u.stop(); c.stop() })
	return udp.LocalAddr().String()
}

// answerA answers every question with one A record for ip.
func answerA(ip string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		m.Answer = []dns.RR{&dns.A{Hdr: header(r.Question[0].Name, dns.TypeA, 60), A: net.ParseIP(ip)}}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		w.WriteMsg(m)
	}
}

func exchange(t *testing.T, network string, q *dns.Msg, addr string) *dns.Msg {
	t.Helper()
	r, _, err := (&dns.Client{Net: network, Timeout: clientTimeout}).Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %s: %v", network, q.Question[0].Name, err)
	}
	return r
}

// TestServerEndToEnd queries a real server over UDP and TCP: cluster names from the
// snapshot, other names forwarded to a second local server.
func TestServerEndToEnd(t *testing.T) {
	var upstreamEDNS atomic.Int32
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if opt := r.IsEdns0(); opt != nil {
			upstreamEDNS.Store(int32(opt.UDPSize()))
		}
		answerA("192.0.2.1")(w, r)
	})
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	s := newTestServer(t, cfg, fixture())
	serve(t, s)

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r := exchange(t, network, query("db-0.db.default.svc.cluster.local.", dns.TypeA, 0), s.Addr())
			if want := []string{"db-0.db.default.svc.cluster.local. A 10.0.1.1"}; !slices.Equal(show(r.Answer), want) || !r.Authoritative || !r.RecursionAvailable {
				t.Errorf("cluster answer %v, want %q with AA and RA", r, want)
			}

			r = exchange(t, network, query("nope.default.svc.cluster.local.", dns.TypeA, 0), s.Addr())
			if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
				t.Errorf("unknown cluster name: %v, want NXDOMAIN with SOA", r)
			}

			q := query("www.example.org.", dns.TypeA, 0)
			r = exchange(t, network, q, s.Addr())
			if want := []string{"www.example.org. A 192.0.2.1"}; !slices.Equal(show(r.Answer), want) || r.Id != q.Id || r.Authoritative {
				t.Errorf("forwarded answer %v, want %q, id %d, not authoritative", r, want, q.Id)
			}

			r = exchange(t, network, query("big.shop.svc.cluster.local.", dns.TypeA, 0), s.Addr())
			if wantTC := network == "udp"; r.Truncated != wantTC || (!wantTC && len(r.Answer) != 100) {
				t.Errorf("big answer over %s: TC %t with %d answers", network, r.Truncated, len(r.Answer))
			}
		})
	}

	r := exchange(t, "udp", query("edns.example.org.", dns.TypeA, 3000), s.Addr())
	if got := upstreamEDNS.Load(); got != 3000 || r.IsEdns0() == nil {
		t.Errorf("EDNS0 not passed through: upstream saw size %d, reply OPT %v", got, r.IsEdns0())
	}
	// www.example.org. went upstream over UDP; the TCP query was answered from the cache.
	if st := s.Stats(); st.Forwarded != 2 || st.Cached != 1 || st.Answered != 4 || st.NXDomain != 2 || st.Truncated != 1 {
		t.Errorf("Stats() = %+v", st)
	}
}

// deadUpstream is a UDP socket that never answers.
func deadUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func TestForwardTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.Upstreams = []string{deadUpstream(t)}
	cfg.ForwardTimeout = 200 * time.Millisecond
	s := newTestServer(t, cfg, nil)
	serve(t, s)

	r := exchange(t, "udp", query("example.org.", dns.TypeA, 0), s.Addr())
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s from a silent upstream, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if st := s.Stats(); st.ForwardFailed != 1 {
		t.Errorf("Stats() = %+v, want one failed forward", st)
	}
}

// TestForwardTriesNext checks that a silent first upstream leaves time for the second.
func TestForwardTriesNext(t *testing.T) {
	cfg := testConfig()
	cfg.Upstreams = []string{deadUpstream(t), startUpstream(t, answerA("192.0.2.7"))}
	cfg.ForwardTimeout = time.Second
	s := newTestServer(t, cfg, nil)
	serve(t, s)

	r := exchange(t, "udp", query("example.org.", dns.TypeA, 0), s.Addr())
	if want := []string{"example.org. A 192.0.2.7"}; !slices.Equal(show(r.Answer), want) {
		t.Errorf("answer %v, want %q from the second upstream", r, want)
	}
}

// blockingUpstream answers only once release is closed, and reports each query it holds.
func blockingUpstream(t *testing.T) (addr string, arrived <-chan struct{}, release func()) {
	t.Helper()
	held := make(chan struct{}, 16)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	addr = startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		held <- struct{}{}
		<-gate
		answerA("192.0.2.9")(w, r)
	})
	// Cleanups run last-registered first: this releases the held handlers before the
	// upstream's own cleanup waits for them.
	t.Cleanup(release)
	return addr, held, release
}

func TestForwardCap(t *testing.T) {
	up, arrived, release := blockingUpstream(t)
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	cfg.ForwardTimeout = time.Minute
	cfg.MaxConcurrentForwards = 2
	s := newTestServer(t, cfg, nil)
	serve(t, s)

	var wg sync.WaitGroup
	replies := make(chan *dns.Msg, 2)
	for i := range 2 {
		wg.Go(func() {
			r, _, err := (&dns.Client{Timeout: time.Minute}).Exchange(query(fmt.Sprintf("slow%d.example.org.", i), dns.TypeA, 0), s.Addr())
			if err != nil {
				t.Errorf("held query: %v", err)
				return
			}
			replies <- r
		})
	}
	<-arrived
	<-arrived

	r := exchange(t, "udp", query("over.example.org.", dns.TypeA, 0), s.Addr())
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("query over the cap: rcode %s, want SERVFAIL at once", dns.RcodeToString[r.Rcode])
	}
	release()
	wg.Wait()
	close(replies)
	for r := range replies {
		if len(r.Answer) != 1 {
			t.Errorf("held query answered %v, want the upstream's record", r)
		}
	}
	if st := s.Stats(); st.ForwardOverCap != 1 || st.Forwarded != 2 {
		t.Errorf("Stats() = %+v, want 1 over the cap and 2 forwarded", st)
	}
}

// TestServeAbortsForwards checks that shutting down does not wait for a forward's timeout.
func TestServeAbortsForwards(t *testing.T) {
	up, arrived, _ := blockingUpstream(t)
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	cfg.ForwardTimeout = time.Hour
	s := newTestServer(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	replied := make(chan *dns.Msg, 1)
	go func() {
		r, _, _ := (&dns.Client{Timeout: clientTimeout}).Exchange(query("held.example.org.", dns.TypeA, 0), s.Addr())
		replied <- r
	}()
	<-arrived
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve still waiting for a forward an hour long")
	}
	if r := <-replied; r != nil && r.Rcode != dns.RcodeServerFailure {
		t.Errorf("aborted forward answered %v, want SERVFAIL or nothing", r)
	}
}

func TestServeLifecycle(t *testing.T) {
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	exchange(t, "tcp", query("cluster.local.", dns.TypeSOA, 0), s.Addr())
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if err := s.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("second Serve: %v, want ErrServerClosed", err)
	}

	// Serve released the address; a new server can take it, and Close releases it too.
	cfg := testConfig()
	cfg.Addr = s.Addr()
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("New on the released address: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := again.Serve(context.Background()); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v, want ErrServerClosed", err)
	}
	if third, err := New(cfg); err != nil {
		t.Errorf("New after Close: %v", err)
	} else {
		third.Close()
	}
}

// TestNewSkipsItself checks the loop guard: an upstream that is the server's own address
// is dropped, so the name is refused rather than forwarded to itself until the timeout.
func TestNewSkipsItself(t *testing.T) {
	first, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr := first.Addr()
	first.Close()

	cfg := testConfig()
	cfg.Addr = addr
	cfg.Upstreams = []string{addr}
	s := newTestServer(t, cfg, nil)
	w := newRecorder("udp", "127.0.0.1")
	s.ServeDNS(w, query("example.org.", dns.TypeA, 0))
	if w.msg.Rcode != dns.RcodeRefused {
		t.Errorf("rcode %s with only itself upstream, want REFUSED", dns.RcodeToString[w.msg.Rcode])
	}
}

// TestSwapWhileServing swaps snapshots while clients query; run with -race. Every answer
// must come whole from one snapshot.
func TestSwapWhileServing(t *testing.T) {
	s := newTestServer(t, testConfig(), nil)
	serve(t, s)
	var snaps []*Snapshot
	for k := range 8 {
		svc := Service{Namespace: "default", Name: "web"}
		for i := range 3 {
			svc.Endpoints = append(svc.Endpoints, Endpoint{
				Hostname: fmt.Sprintf("web-%d", i), Addr: netip.AddrFrom4([4]byte{10, 0, byte(k), byte(i + 1)}), Ready: true})
		}
		snap, err := NewSnapshot("cluster.local", []Service{svc})
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, snap)
	}
	s.Swap(snaps[0])

	done := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
				s.Swap(snaps[i%len(snaps)])
			}
		}
	})
	var clients sync.WaitGroup
	for range 4 {
		clients.Go(func() {
			c := &dns.Client{Timeout: clientTimeout}
			for range 100 {
				r, _, err := c.Exchange(query("web.default.svc.cluster.local.", dns.TypeA, 0), s.Addr())
				if err != nil {
					t.Error(err)
					return
				}
				versions := map[byte]bool{}
				for _, rr := range r.Answer {
					versions[rr.(*dns.A).A.To4()[2]] = true
				}
				if len(r.Answer) != 3 || len(versions) != 1 {
					t.Errorf("torn answer: %v", r.Answer)
					return
				}
			}
		})
	}
	clients.Wait()
	close(done)
	swapper.Wait()
}

func TestDefaultConfigValidates(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"addr without port", func(c *Config) { c.Addr = "127.0.0.1" }},
		{"addr with a host name", func(c *Config) { c.Addr = "localhost:53" }},
		{"bad domain", func(c *Config) { c.Domain = "cluster..local" }},
		{"negative ttl", func(c *Config) { c.TTL = -time.Second }},
		{"upstream host name", func(c *Config) { c.Upstreams = []string{"dns.example.org"} }},
		{"zero forward timeout", func(c *Config) { c.ForwardTimeout = 0 }},
		{"zero forward cap", func(c *Config) { c.MaxConcurrentForwards = 0 }},
		{"zero per-client forward cap", func(c *Config) { c.MaxForwardsPerClient = 0 }},
		{"negative cache size", func(c *Config) { c.CacheEntries = -1 }},
		{"cache entries without bytes", func(c *Config) { c.CacheBytes = 0 }},
		{"zero cache max TTL", func(c *Config) { c.CacheMaxTTL = 0 }},
		{"negative max stale", func(c *Config) { c.MaxStale = -time.Second }},
		{"no allowed nets", func(c *Config) { c.AllowedNets = nil }},
		{"invalid allowed net", func(c *Config) { c.AllowedNets = []netip.Prefix{{}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("New() = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestParseUpstream(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"192.0.2.53", "192.0.2.53:53"},
		{"192.0.2.53:5353", "192.0.2.53:5353"},
		{"2001:db8::53", "[2001:db8::53]:53"},
		{"[2001:db8::53]", "[2001:db8::53]:53"},
		{"[2001:db8::53]:5353", "[2001:db8::53]:5353"},
		{"dns.example.org", ""},
		{"192.0.2.53:dns", ""},
	}
	for _, tt := range tests {
		got, err := parseUpstream(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseUpstream(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("parseUpstream(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestIsSelf(t *testing.T) {
	ap := netip.MustParseAddrPort
	local := []netip.Addr{netip.MustParseAddr("192.168.1.10")}
	tests := []struct {
		upstream, bound string
		want            bool
	}{
		{"127.0.0.1:53", "127.0.0.1:53", true},
		{"127.0.0.1:5353", "127.0.0.1:53", false},
		{"127.0.0.53:53", "127.0.0.1:53", false}, // systemd-resolved beside us
		{"[::ffff:127.0.0.1]:53", "127.0.0.1:53", true},
		{"0.0.0.0:53", "127.0.0.1:53", true},
		{"127.0.0.53:53", "0.0.0.0:53", true},
		{"[::1]:53", "[::]:53", true},
		{"192.168.1.10:53", "0.0.0.0:53", true},
		{"192.168.1.1:53", "0.0.0.0:53", false}, // the router
		{"192.168.1.10:53", "127.0.0.1:53", false},
	}
	for _, tt := range tests {
		if got := isSelf(ap(tt.upstream), ap(tt.bound), local); got != tt.want {
			t.Errorf("isSelf(%s, bound %s) = %t, want %t", tt.upstream, tt.bound, got, tt.want)
		}
	}
}

// TestServeWildcard covers the UDP path for a socket bound to every address (miekg/dns's
// server, which answers from the address queried). Only loopback clients are allowed and
// only loopback is queried.
func TestServeWildcard(t *testing.T) {
	cfg := testConfig()
	cfg.Addr = "0.0.0.0:0"
	cfg.AllowedNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s := newTestServer(t, cfg, fixture())
	serve(t, s)
	port := s.udp.LocalAddr().(*net.UDPAddr).Port
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, query("db-1.db.default.svc.cluster.local.", dns.TypeA, 0), fmt.Sprintf("127.0.0.1:%d", port))
		if want := []string{"db-1.db.default.svc.cluster.local. A 10.0.1.2"}; !slices.Equal(show(r.Answer), want) {
			t.Errorf("%s answer %v, want %q", network, r, want)
		}
	}
}

// TestServeReportsListenerFailure checks that Serve returns an error, rather than hanging
// or claiming success, when its sockets go away under it.
func TestServeReportsListenerFailure(t *testing.T) {
	s, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	exchange(t, "udp", query("cluster.local.", dns.TypeSOA, 0), s.Addr()) // serving
	s.Close()
	if err := <-served; err == nil {
		t.Error("Serve returned nil after its sockets were closed")
	}
}

// A Service with a virtual IP answers it (whatever is ready behind it), its SRV records
// carry the Service's port, and its VIP reverses to its name; a headless Service still
// answers its ready instances.
func TestServerVirtualIP(t *testing.T) {
	services := []Service{
		{Namespace: "shop", Name: "front", VIP: netip.MustParseAddr("10.96.0.17"), Ports: []Port{{Name: "http", Port: 80}},
			Endpoints: []Endpoint{{Hostname: "front-0", Addr: netip.MustParseAddr("10.244.1.5"), Ready: true}, {Hostname: "front-1", Addr: netip.MustParseAddr("10.244.2.5")}}},
		{Namespace: "shop", Name: "empty", VIP: netip.MustParseAddr("10.96.0.18"), Ports: []Port{{Name: "http", Port: 80}}},
		{Namespace: "shop", Name: "db", Headless: true, Ports: []Port{{Name: "sql", Port: 5432}},
			Endpoints: []Endpoint{{Hostname: "db-0", Addr: netip.MustParseAddr("10.244.1.9"), Ready: true}}},
	}
	s := newTestServer(t, testConfig(), services)
	serve(t, s)
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"front.shop.svc.cluster.local.", dns.TypeA, []string{"front.shop.svc.cluster.local. A 10.96.0.17"}},
		{"empty.shop.svc.cluster.local.", dns.TypeA, []string{"empty.shop.svc.cluster.local. A 10.96.0.18"}},
		{"_http._tcp.front.shop.svc.cluster.local.", dns.TypeSRV, []string{"_http._tcp.front.shop.svc.cluster.local. SRV 0 100 80 front.shop.svc.cluster.local."}},
		{"17.0.96.10.in-addr.arpa.", dns.TypePTR, []string{"17.0.96.10.in-addr.arpa. PTR front.shop.svc.cluster.local."}},
		{"db.shop.svc.cluster.local.", dns.TypeA, []string{"db.shop.svc.cluster.local. A 10.244.1.9"}},
	} {
		r := exchange(t, "udp", query(tt.name, tt.qtype, 0), s.Addr())
		if got := show(r.Answer); !slices.Equal(got, tt.want) {
			t.Errorf("%s: answer %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := NewSnapshot("cluster.local", []Service{{Namespace: "a", Name: "b", Headless: true, VIP: netip.MustParseAddr("10.96.0.1")}}); !errors.Is(err, ErrInvalidService) {
		t.Errorf("a headless Service with a VIP: %v, want ErrInvalidService", err)
	}
}
