package dns

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// TestServerExternalName queries a real server for ExternalName Services: the name answers
// a CNAME to the target for every type; an in-cluster target's records follow from the
// snapshot; an outside target's records follow from the upstream, as CoreDNS answers.
func TestServerExternalName(t *testing.T) {
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name == "big.example.com." { // just fits in 512 bytes by itself
			m := new(dns.Msg).SetReply(r)
			m.Compress = true
			for i := range 28 {
				m.Answer = append(m.Answer, &dns.A{Hdr: header(r.Question[0].Name, dns.TypeA, 60), A: net.IPv4(192, 0, 2, byte(i))})
			}
			w.WriteMsg(m)
			return
		}
		if r.Question[0].Name != "db.example.com." {
			w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeNameError))
			return
		}
		answerA("192.0.2.80")(w, r)
	})
	cfg := testConfig()
	cfg.Upstreams = []string{up}
	services := []Service{
		{Namespace: "shop", Name: "db", ExternalName: "DB.example.com"},
		{Namespace: "shop", Name: "front", VIP: netip.MustParseAddr("10.96.0.17"), Ports: []Port{{Name: "http", Port: 80}}},
		{Namespace: "shop", Name: "web", ExternalName: "front.shop.svc.cluster.local."},
		{Namespace: "shop", Name: "loop1", ExternalName: "loop2.shop.svc.cluster.local"},
		{Namespace: "shop", Name: "loop2", ExternalName: "loop1.shop.svc.cluster.local"},
		{Namespace: "shop", Name: "gone", ExternalName: "nope.shop.svc.cluster.local"},
		{Namespace: "shop", Name: "big", ExternalName: "big.example.com"},
	}
	s := newTestServer(t, cfg, services)
	serve(t, s)
	const cname = "db.shop.svc.cluster.local. CNAME db.example.com."
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range []struct {
			name   string
			qtype  uint16
			rcode  int
			answer []string
		}{
			{"db.shop.svc.cluster.local.", dns.TypeCNAME, dns.RcodeSuccess, []string{cname}},
			{"db.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{cname, "db.example.com. A 192.0.2.80"}},
			{"DB.Shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"DB.Shop.svc.cluster.local. CNAME db.example.com.", "db.example.com. A 192.0.2.80"}},
			{"web.shop.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{
				"web.shop.svc.cluster.local. CNAME front.shop.svc.cluster.local.", "front.shop.svc.cluster.local. A 10.96.0.17"}},
			{"web.shop.svc.cluster.local.", dns.TypeCNAME, dns.RcodeSuccess, []string{"web.shop.svc.cluster.local. CNAME front.shop.svc.cluster.local."}},
			{"gone.shop.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, []string{"gone.shop.svc.cluster.local. CNAME nope.shop.svc.cluster.local."}},
		} {
			q := query(tt.name, tt.qtype, 0)
			r := exchange(t, network, q, s.Addr())
			if got := inOrder(r.Answer); r.Rcode != tt.rcode || r.Id != q.Id || !slices.Equal(got, tt.answer) || r.Question[0].Name != tt.name {
				t.Errorf("%s %s %s: rcode %s, answer %q, question %v; want %s, %q", network, tt.name, dns.TypeToString[tt.qtype],
					dns.RcodeToString[r.Rcode], got, r.Question, dns.RcodeToString[tt.rcode], tt.answer)
			}
		}
	}
	// The alias makes an answer that fitted 512 bytes longer: it is truncated again.
	r := exchange(t, "udp", query("big.shop.svc.cluster.local.", dns.TypeA, 0), s.Addr())
	r.Compress = true // as it came on the wire
	if !r.Truncated || r.Len() > dns.MinMsgSize {
		t.Errorf("aliased big answer over UDP: TC %t, %d bytes; want TC within %d bytes: %v", r.Truncated, r.Len(), dns.MinMsgSize, r)
	}
	if r = exchange(t, "tcp", query("big.shop.svc.cluster.local.", dns.TypeA, 0), s.Addr()); r.Truncated || len(r.Answer) != 29 {
		t.Errorf("aliased big answer over TCP: TC %t, %d records; want all 29", r.Truncated, len(r.Answer))
	}
	// A loop of aliases ends after maxCNAMEChain+1 records, never spins.
	r = exchange(t, "udp", query("loop1.shop.svc.cluster.local.", dns.TypeA, 0), s.Addr())
	if len(r.Answer) != maxCNAMEChain+1 {
		t.Errorf("alias loop: %d records, want %d", len(r.Answer), maxCNAMEChain+1)
	}
	// Without upstreams the alias alone is the answer.
	s2 := newTestServer(t, testConfig(), services)
	serve(t, s2)
	r = exchange(t, "udp", query("db.shop.svc.cluster.local.", dns.TypeA, 0), s2.Addr())
	if got := inOrder(r.Answer); !slices.Equal(got, []string{cname}) || !r.Authoritative {
		t.Errorf("no upstream: answer %q, want only %q, authoritative", got, cname)
	}
}

func TestSnapshotRefusesBadExternalName(t *testing.T) {
	for _, svc := range []Service{
		{Namespace: "a", Name: "b", ExternalName: "bad..name"},
		{Namespace: "a", Name: "b", ExternalName: "db.example.com", VIP: netip.MustParseAddr("10.96.0.1")},
		{Namespace: "a", Name: "b", ExternalName: "db.example.com", Ports: []Port{{Port: 80}}},
	} {
		if _, err := NewSnapshot("cluster.local", []Service{svc}); !errors.Is(err, ErrInvalidService) {
			t.Errorf("%+v: %v, want ErrInvalidService", svc, err)
		}
	}
}

// inOrder is show without sorting: an alias's CNAME must come before its target's records.
func inOrder(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, show([]dns.RR{rr})...)
	}
	return out
}
