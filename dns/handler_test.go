package dns

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestServeDNS(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	const soa = "cluster.local. SOA"
	tests := []struct {
		name    string
		q       *dns.Msg
		network string // "udp" unless set
		client  string // 127.0.0.1 unless set
		rcode   int
		answer  []string // as show renders them; nil means none
		extra   []string
		ns      []string // as owners renders them
		tc      bool
		nAnswer int // when set, the number of answers instead of their content
	}{
		{
			name:  "A lists each ready address once",
			q:     query("web.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeSuccess,
			answer: []string{
				"web.default.svc.cluster.local. A 10.0.0.1",
				"web.default.svc.cluster.local. A 10.0.0.2",
			},
		},
		{
			name:  "AAAA on a v4-only name is NODATA with SOA",
			q:     query("web.default.svc.cluster.local.", dns.TypeAAAA, 0),
			rcode: dns.RcodeSuccess,
			ns:    []string{soa},
		},
		{
			name:   "AAAA answers v6 endpoints",
			q:      query("six.default.svc.cluster.local.", dns.TypeAAAA, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"six.default.svc.cluster.local. AAAA fd00::1"},
		},
		{
			name:  "A on a v6-only name is NODATA",
			q:     query("v6only.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeSuccess,
			ns:    []string{soa},
		},
		{
			name:   "SRV of a service targets the service name",
			q:      query("_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"_http._tcp.web.default.svc.cluster.local. SRV 0 100 8080 web.default.svc.cluster.local."},
			extra: []string{
				"web.default.svc.cluster.local. A 10.0.0.1",
				"web.default.svc.cluster.local. A 10.0.0.2",
			},
		},
		{
			name:  "SRV of a headless service targets each ready instance",
			q:     query("_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, 0),
			rcode: dns.RcodeSuccess,
			answer: []string{
				"_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
				"_pg._tcp.db.default.svc.cluster.local. SRV 0 50 5432 db-1.db.default.svc.cluster.local.",
			},
			extra: []string{
				"db-0.db.default.svc.cluster.local. A 10.0.1.1",
				"db-1.db.default.svc.cluster.local. A 10.0.1.2",
			},
		},
		{
			name:   "SRV additional carries AAAA too",
			q:      query("_dns._udp.six.default.svc.cluster.local.", dns.TypeSRV, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"_dns._udp.six.default.svc.cluster.local. SRV 0 100 53 six.default.svc.cluster.local."},
			extra: []string{
				"six.default.svc.cluster.local. A 10.0.2.1",
				"six.default.svc.cluster.local. AAAA fd00::1",
			},
		},
		{
			name:  "SRV under the wrong protocol does not exist",
			q:     query("_http._udp.web.default.svc.cluster.local.", dns.TypeSRV, 0),
			rcode: dns.RcodeNameError,
			ns:    []string{soa},
		},
		{
			name:   "headless instance name",
			q:      query("db-0.db.default.svc.cluster.local.", dns.TypeA, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"db-0.db.default.svc.cluster.local. A 10.0.1.1"},
		},
		{
			name:  "a not-ready instance is not answered",
			q:     query("db-2.db.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeNameError,
			ns:    []string{soa},
		},
		{
			name:   "not-ready endpoints are left out of the service",
			q:      query("db.default.svc.cluster.local.", dns.TypeA, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"db.default.svc.cluster.local. A 10.0.1.1", "db.default.svc.cluster.local. A 10.0.1.2"},
		},
		{
			name:  "instance names exist only for headless services",
			q:     query("web-1.web.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeNameError,
			ns:    []string{soa},
		},
		{
			name:   "PTR of a headless endpoint names the instance",
			q:      query("1.1.0.10.in-addr.arpa.", dns.TypePTR, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"1.1.0.10.in-addr.arpa. PTR db-0.db.default.svc.cluster.local."},
		},
		{
			name:   "PTR of a service endpoint names the service",
			q:      query("1.0.0.10.in-addr.arpa.", dns.TypePTR, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"1.0.0.10.in-addr.arpa. PTR web.default.svc.cluster.local."},
		},
		{
			name:   "PTR of a v6 endpoint",
			q:      query("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. PTR six.default.svc.cluster.local."},
		},
		{
			name:  "PTR of a not-ready endpoint is not ours: refused without upstreams",
			q:     query("3.1.0.10.in-addr.arpa.", dns.TypePTR, 0),
			rcode: dns.RcodeRefused,
		},
		{
			name:  "unknown name in the domain is NXDOMAIN with SOA",
			q:     query("nope.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeNameError,
			ns:    []string{soa},
		},
		{
			name:  "a service without endpoints exists: NODATA",
			q:     query("empty.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeSuccess,
			ns:    []string{soa},
		},
		{
			name:  "its SRV name exists too, without records",
			q:     query("_http._tcp.empty.default.svc.cluster.local.", dns.TypeSRV, 0),
			rcode: dns.RcodeSuccess,
			ns:    []string{soa},
		},
		{
			name:  "a headless service without ready endpoints is NXDOMAIN, as in CoreDNS",
			q:     query("gone.default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeNameError,
			ns:    []string{soa},
		},
		{
			name:  "a namespace is an empty non-terminal: NODATA",
			q:     query("default.svc.cluster.local.", dns.TypeA, 0),
			rcode: dns.RcodeSuccess,
			ns:    []string{soa},
		},
		{
			name:  "names are case-insensitive and answered as asked",
			q:     query("WEB.Default.SVC.cluster.LOCAL.", dns.TypeA, 0),
			rcode: dns.RcodeSuccess,
			answer: []string{
				"WEB.Default.SVC.cluster.LOCAL. A 10.0.0.1",
				"WEB.Default.SVC.cluster.LOCAL. A 10.0.0.2",
			},
		},
		{
			name:    "SOA at the apex",
			q:       query("cluster.local.", dns.TypeSOA, 0),
			rcode:   dns.RcodeSuccess,
			nAnswer: 1,
		},
		{
			name:   "NS at the apex",
			q:      query("Cluster.Local.", dns.TypeNS, 0),
			rcode:  dns.RcodeSuccess,
			answer: []string{"Cluster.Local. NS ns.dns.cluster.local."},
		},
		{
			name:   "a client outside the allowed nets is refused",
			q:      query("web.default.svc.cluster.local.", dns.TypeA, 0),
			client: "203.0.113.7",
			rcode:  dns.RcodeRefused,
		},
		{
			name:   "so is one over TCP, v6",
			q:      query("web.default.svc.cluster.local.", dns.TypeA, 0),
			client: "2001:db8::1", network: "tcp",
			rcode: dns.RcodeRefused,
		},
		{
			name:   "v4-mapped loopback is loopback",
			q:      query("db-0.db.default.svc.cluster.local.", dns.TypeA, 0),
			client: "::ffff:127.0.0.1",
			rcode:  dns.RcodeSuccess,
			answer: []string{"db-0.db.default.svc.cluster.local. A 10.0.1.1"},
		},
		{
			name:    "a large answer over UDP without EDNS0 is truncated to 512 bytes",
			q:       query("big.shop.svc.cluster.local.", dns.TypeA, 0),
			rcode:   dns.RcodeSuccess,
			tc:      true,
			nAnswer: 29, // (512 - 12 header - 32 question) / 16 per compressed A record
		},
		{
			name:    "EDNS0 raises the limit",
			q:       query("big.shop.svc.cluster.local.", dns.TypeA, 4096),
			rcode:   dns.RcodeSuccess,
			nAnswer: 100,
		},
		{
			name:    "TCP carries it all",
			q:       query("big.shop.svc.cluster.local.", dns.TypeA, 0),
			network: "tcp",
			rcode:   dns.RcodeSuccess,
			nAnswer: 100,
		},
		{
			name:  "names outside the domain are refused without upstreams",
			q:     query("example.org.", dns.TypeA, 0),
			rcode: dns.RcodeRefused,
		},
		{
			name: "other classes are refused",
			q: func() *dns.Msg {
				m := query("web.default.svc.cluster.local.", dns.TypeA, 0)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			}(),
			rcode: dns.RcodeRefused,
		},
		{
			name: "EDNS0 versions other than 0 get BADVERS",
			q: func() *dns.Msg {
				m := query("web.default.svc.cluster.local.", dns.TypeA, 1232)
				m.IsEdns0().SetVersion(1)
				return m
			}(),
			rcode: dns.RcodeBadVers,
		},
		{
			name:  "opcodes other than QUERY are not implemented",
			q:     func() *dns.Msg { m := query("cluster.local.", dns.TypeSOA, 0); m.Opcode = dns.OpcodeUpdate; return m }(),
			rcode: dns.RcodeNotImplemented,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			network, client := tt.network, tt.client
			if network == "" {
				network = "udp"
			}
			if client == "" {
				client = "127.0.0.1"
			}
			w := newRecorder(network, client)
			s.ServeDNS(w, tt.q)
			if w.writes != 1 {
				t.Fatalf("handler wrote %d replies, want 1", w.writes)
			}
			got := w.msg
			if got.Id != tt.q.Id || !got.Response {
				t.Errorf("reply id %d response %t, want id %d and a response", got.Id, got.Response, tt.q.Id)
			}
			if got.Rcode != tt.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got.Truncated != tt.tc {
				t.Errorf("TC %t, want %t", got.Truncated, tt.tc)
			}
			if tt.nAnswer > 0 {
				if len(got.Answer) != tt.nAnswer {
					t.Errorf("%d answers, want %d", len(got.Answer), tt.nAnswer)
				}
			} else if a := show(got.Answer); !slices.Equal(a, tt.answer) {
				t.Errorf("answer\n got %q\nwant %q", a, tt.answer)
			}
			if e := show(got.Extra); !slices.Equal(e, tt.extra) {
				t.Errorf("extra\n got %q\nwant %q", e, tt.extra)
			}
			if ns := owners(got.Ns); !slices.Equal(ns, tt.ns) {
				t.Errorf("authority %q, want %q", ns, tt.ns)
			}
			if (tt.q.IsEdns0() != nil) != (got.IsEdns0() != nil) {
				t.Errorf("reply OPT %v for request OPT %v", got.IsEdns0(), tt.q.IsEdns0())
			}
			if tt.rcode != dns.RcodeRefused && got.Authoritative != (tt.rcode != dns.RcodeNotImplemented && tt.rcode != dns.RcodeBadVers) {
				t.Errorf("AA %t", got.Authoritative)
			}
		})
	}
}

// TestServeDNSRotates checks that consecutive answers start at different addresses and
// are all permutations of one set.
func TestServeDNSRotates(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	firsts := map[string]bool{}
	var set []string
	for range 4 {
		w := newRecorder("udp", "127.0.0.1")
		s.ServeDNS(w, query("db.default.svc.cluster.local.", dns.TypeA, 0))
		firsts[w.msg.Answer[0].(*dns.A).A.String()] = true
		got := show(w.msg.Answer)
		if set == nil {
			set = got
		} else if !slices.Equal(got, set) {
			t.Fatalf("answer set changed: %q then %q", set, got)
		}
	}
	if len(firsts) != 2 {
		t.Errorf("first addresses over 4 queries: %v, want both addresses in turn", firsts)
	}
}

func TestServeDNSEchoesDO(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	w := newRecorder("udp", "127.0.0.1")
	s.ServeDNS(w, query("web.default.svc.cluster.local.", dns.TypeA, 4096)) // DO set by query
	opt := w.msg.IsEdns0()
	if opt == nil || !opt.Do() || opt.UDPSize() != advertisedUDPSize {
		t.Fatalf("reply OPT %v, want DO echoed and size %d", opt, advertisedUDPSize)
	}
}

func TestServeDNSIgnoresResponses(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	w := newRecorder("udp", "127.0.0.1")
	m := query("web.default.svc.cluster.local.", dns.TypeA, 0)
	m.Response = true
	s.ServeDNS(w, m)
	if w.writes != 0 {
		t.Fatalf("handler answered a response: %v", w.msg)
	}
}

func TestServeDNSCounts(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	for _, q := range []struct {
		name, client string
	}{
		{"web.default.svc.cluster.local.", "127.0.0.1"},
		{"nope.default.svc.cluster.local.", "127.0.0.1"},
		{"web.default.svc.cluster.local.", "198.51.100.1"},
		{"big.shop.svc.cluster.local.", "10.9.9.9"},
	} {
		s.ServeDNS(newRecorder("udp", q.client), query(q.name, dns.TypeA, 0))
	}
	want := Stats{Queries: 4, Answered: 2, NXDomain: 1, Refused: 1, Truncated: 1}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestSwapTakesEffect checks invariant 7: a removed instance leaves the answers at once,
// and its name becomes NXDOMAIN, never a stale address.
func TestSwapTakesEffect(t *testing.T) {
	s := newTestServer(t, testConfig(), fixture())
	services := fixture()
	services[1].Endpoints[1].Ready = false // db-0
	snap, err := NewSnapshot("cluster.local", services)
	if err != nil {
		t.Fatal(err)
	}
	s.Swap(snap)
	w := newRecorder("udp", "127.0.0.1")
	s.ServeDNS(w, query("db-0.db.default.svc.cluster.local.", dns.TypeA, 0))
	if w.msg.Rcode != dns.RcodeNameError {
		t.Errorf("db-0 after it stopped being ready: %v", w.msg)
	}
	s.Swap(nil)
	w = newRecorder("udp", "127.0.0.1")
	s.ServeDNS(w, query("db-1.db.default.svc.cluster.local.", dns.TypeA, 0))
	if w.msg.Rcode != dns.RcodeNameError || len(w.msg.Ns) != 1 {
		t.Errorf("db-1 after Swap(nil): %v", w.msg)
	}
}
