package dns

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// clientFrom is a DNS client whose queries leave from ip, a loopback address: tests speak
// as several containers of one node, each with its own address.
func clientFrom(ip string, timeout time.Duration) *dns.Client {
	return &dns.Client{Timeout: timeout, Dialer: &net.Dialer{Timeout: timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(ip)}}}
}

// TestForwardFloodLeavesOthersServed is the denial of service through the forwarder: one
// container sends 2,000 queries for distinct names (nothing a cache can absorb) at 500 a
// second to an upstream that takes a second to answer. Every other container's names
// outside the cluster must still be resolved: the flooder gets only its own share of the
// forwards in flight.
func TestForwardFloodLeavesOthersServed(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a loopback upstream for 4 s")
	}
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(time.Second) // a slow authority, or one the attacker runs
		answerA("192.0.2.1")(w, r)
	})
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	cfg.MaxConcurrentForwards = 200
	s := newTestServer(t, cfg, nil)
	serve(t, s)

	flooder, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	go func() { // drain the flooder's answers; ends when the socket closes
		buf := make([]byte, 512)
		for {
			if _, _, err := flooder.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	server, err := net.ResolveUDPAddr("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	flooding := make(chan struct{})
	var flood sync.WaitGroup
	flood.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := range 2000 { // one every 2 ms: 500 queries/s for 4 s
			wire, _ := query(fmt.Sprintf("f%d.flood.example.net.", i), dns.TypeA, 0).Pack()
			flooder.WriteTo(wire, server)
			if i == 500 {
				close(flooding) // a second in: the flood holds every slot it can
			}
			<-tick.C
		}
	})
	<-flooding

	var victims sync.WaitGroup
	var served atomic.Int32
	for i := range 10 {
		victims.Go(func() {
			c := clientFrom("127.0.0.3", clientTimeout)
			r, _, err := c.Exchange(query(fmt.Sprintf("www%d.example.org.", i), dns.TypeA, 0), s.Addr())
			switch {
			case err != nil:
				t.Errorf("victim query %d: %v", i, err)
			case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1:
				t.Errorf("victim query %d during the flood: %s with %d answers, want the upstream's answer", i, dns.RcodeToString[r.Rcode], len(r.Answer))
			default:
				served.Add(1)
			}
		})
		time.Sleep(50 * time.Millisecond)
	}
	victims.Wait()
	flood.Wait()
	if st := s.Stats(); st.ForwardOverCap == 0 {
		t.Errorf("Stats() = %+v: the flood was never capped", st)
	}
	t.Logf("%d of 10 victim queries answered during the flood; %+v", served.Load(), s.Stats())
}

// switchableUpstream answers name with an A record of TTL ttl while its mode is "up",
// fails with SERVFAIL in mode "servfail", and drops queries in mode "silent".
type switchableUpstream struct {
	mode    atomic.Value // string
	queries atomic.Int32
}

func (u *switchableUpstream) handle(ttl uint32) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		switch u.mode.Load() {
		case "up":
			m := new(dns.Msg).SetReply(r)
			m.Answer = []dns.RR{aRecord(r.Question[0].Name, "192.0.2.5", ttl)}
			w.WriteMsg(m)
		case "servfail":
			w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeServerFailure))
		}
	}
}

// TestServeStale checks RFC 8767's serve-stale: once an upstream answered for a name, that
// answer outlives the upstream, expired, with a 30 s TTL, however the upstream fails.
func TestServeStale(t *testing.T) {
	for _, failure := range []string{"silent", "servfail"} {
		t.Run(failure, func(t *testing.T) {
			u := &switchableUpstream{}
			u.mode.Store("up")
			cfg := testConfig()
			cfg.Upstreams = []string{startUpstream(t, u.handle(1))}
			cfg.ForwardTimeout = 300 * time.Millisecond
			s := newTestServer(t, cfg, nil)
			serve(t, s)

			r := exchange(t, "udp", query("known.example.org.", dns.TypeA, 0), s.Addr())
			if len(r.Answer) != 1 {
				t.Fatalf("upstream up: %v", r)
			}
			u.mode.Store(failure)
			time.Sleep(1100 * time.Millisecond) // past the answer's TTL of 1 s

			r = exchange(t, "udp", query("known.example.org.", dns.TypeA, 0), s.Addr())
			if want := []string{"known.example.org. A 192.0.2.5"}; r.Rcode != dns.RcodeSuccess || !slices.Equal(show(r.Answer), want) {
				t.Fatalf("upstream %s: %v, want the stale %q", failure, r, want)
			}
			if ttl := r.Answer[0].Header().Ttl; ttl != staleTTL {
				t.Errorf("stale answer's TTL %d, want %d", ttl, staleTTL)
			}
			if u.queries.Load() != 2 {
				t.Errorf("upstream asked %d times, want 2: an expired answer is refreshed first", u.queries.Load())
			}
			r = exchange(t, "tcp", query("unknown.example.org.", dns.TypeA, 0), s.Addr())
			if r.Rcode != dns.RcodeServerFailure {
				t.Errorf("a name never answered, upstream %s: %v, want SERVFAIL", failure, r)
			}
			if st := s.Stats(); st.Stale != 1 {
				t.Errorf("Stats() = %+v, want 1 stale answer", st)
			}
		})
	}
}

// TestCacheAnswersWhileFresh checks that a fresh answer, positive or negative, is served
// without asking the upstream again, with its TTL counting down.
func TestCacheAnswersWhileFresh(t *testing.T) {
	var queries atomic.Int32
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		queries.Add(1)
		if r.Question[0].Name == "nx.example.org." {
			w.WriteMsg(upstreamAnswer(r, dns.RcodeNameError, nil, 3600, 60))
			return
		}
		answerA("192.0.2.1")(w, r) // TTL 60
	})
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	s := newTestServer(t, cfg, nil)
	serve(t, s)
	for i := range 3 {
		r := exchange(t, "udp", query("www.example.org.", dns.TypeA, 0), s.Addr())
		if len(r.Answer) != 1 || r.Answer[0].Header().Ttl > 60 {
			t.Errorf("answer %v, want one A with TTL at most 60", r)
		}
		r = exchange(t, "udp", query("nx.example.org.", dns.TypeA, 0), s.Addr())
		// The first is the upstream's own; the cache keeps it for the SOA's minimum.
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 || (i > 0 && r.Ns[0].Header().Ttl > 60) {
			t.Errorf("negative answer %v, want NXDOMAIN with an SOA of TTL at most 60 (its minimum)", r)
		}
	}
	if n := queries.Load(); n != 2 {
		t.Errorf("upstream asked %d times for 6 queries of 2 questions, want 2", n)
	}
}

// TestForwardIgnoresSpoofedAnswer is an off-path spoofer racing the upstream: an answer
// with the wrong ID arrives first. It is neither relayed nor cached; the genuine answer is.
func TestForwardIgnoresSpoofedAnswer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var upstream sync.WaitGroup
	t.Cleanup(func() { pc.Close(); upstream.Wait() })
	upstream.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			spoof := new(dns.Msg).SetReply(q)
			spoof.Id = q.Id + 1
			spoof.Answer = []dns.RR{aRecord(q.Question[0].Name, "198.51.100.66", 86400)}
			genuine := new(dns.Msg).SetReply(q)
			genuine.Answer = []dns.RR{aRecord(q.Question[0].Name, "192.0.2.1", 60)}
			for _, m := range []*dns.Msg{spoof, genuine} {
				wire, _ := m.Pack()
				pc.WriteTo(wire, from)
			}
		}
	})
	cfg := testConfig()
	cfg.Upstreams = []string{pc.LocalAddr().String()}
	s := newTestServer(t, cfg, nil)
	serve(t, s)
	for _, what := range []string{"forwarded", "cached"} {
		r := exchange(t, "udp", query("bank.example.org.", dns.TypeA, 0), s.Addr())
		if want := []string{"bank.example.org. A 192.0.2.1"}; !slices.Equal(show(r.Answer), want) {
			t.Errorf("%s answer %v, want %q", what, r.Answer, want)
		}
	}
}

// TestForwardRejectsOtherQuestion is an upstream (or a spoofer with the right ID) answering
// another question than was asked, to plant that answer in the cache.
func TestForwardRejectsOtherQuestion(t *testing.T) {
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name == "lure.example.net." {
			m := new(dns.Msg).SetReply(r)
			m.Question[0].Name = "bank.example.org."
			m.Answer = []dns.RR{aRecord("bank.example.org.", "198.51.100.66", 86400)}
			w.WriteMsg(m)
			return
		}
		answerA("192.0.2.1")(w, r)
	})
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	s := newTestServer(t, cfg, nil)
	serve(t, s)
	if r := exchange(t, "udp", query("lure.example.net.", dns.TypeA, 0), s.Addr()); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("answer to another question relayed: %v", r)
	}
	r := exchange(t, "udp", query("bank.example.org.", dns.TypeA, 0), s.Addr())
	if want := []string{"bank.example.org. A 192.0.2.1"}; !slices.Equal(show(r.Answer), want) {
		t.Errorf("answer %v, want %q", r.Answer, want)
	}
}

// TestCacheNeverAnswersClusterNames checks that a name the snapshot comes to serve is
// answered from the snapshot, whatever an upstream said of it before.
func TestCacheNeverAnswersClusterNames(t *testing.T) {
	cfg := testConfig()
	cfg.Upstreams = []string{startUpstream(t, answerA("198.51.100.66"))}
	s := newTestServer(t, cfg, nil)
	serve(t, s)
	// Before 10.0.1.1 is an endpoint, its reverse name is the upstream's.
	if r := exchange(t, "udp", query("1.1.0.10.in-addr.arpa.", dns.TypePTR, 0), s.Addr()); r.Authoritative {
		t.Fatalf("reverse name answered as ours before any endpoint: %v", r)
	}
	snap, err := NewSnapshot("cluster.local", fixture())
	if err != nil {
		t.Fatal(err)
	}
	s.Swap(snap)
	r := exchange(t, "udp", query("1.1.0.10.in-addr.arpa.", dns.TypePTR, 0), s.Addr())
	if want := []string{"1.1.0.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local."}; !slices.Equal(show(r.Answer), want) {
		t.Errorf("answer %v, want %q from the snapshot", r.Answer, want)
	}
}

// BenchmarkForwardCached measures a query for a name outside the cluster answered from the
// cache: what every container's repeated lookups of an external name cost.
func BenchmarkForwardCached(b *testing.B) {
	cfg := testConfig()
	cfg.Upstreams = []string{startUpstream(b, answerA("192.0.2.1"))}
	s := newTestServer(b, cfg, benchServices(1000))
	q := query("www.example.org.", dns.TypeA, 1232)
	w := &packWriter{recorder: recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}, buf: make([]byte, 0, 4096)}
	s.ServeDNS(w, q) // forwarded once, cached from then on
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
	if st := s.Stats(); st.Forwarded != 1 {
		b.Fatalf("Stats() = %+v, want 1 forward and the rest from the cache", st)
	}
}
