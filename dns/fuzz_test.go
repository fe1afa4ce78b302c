package dns

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary bytes that unpack as a DNS message to the handler, over UDP
// and TCP, from an allowed and a refused client, to a server that answers alone and one
// that forwards and caches. The handler must not panic, must answer every query exactly
// once with a reply that packs (the recorder packs it) and fits the transport, and must
// never answer a response.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []*dns.Msg{
		query("web.default.svc.cluster.local.", dns.TypeA, 0),
		query("_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, 1232),
		query("big.shop.svc.cluster.local.", dns.TypeANY, 0),
		query("1.1.0.10.in-addr.arpa.", dns.TypePTR, 0),
		query("cluster.local.", dns.TypeSOA, 4096),
		query("example.org.", dns.TypeA, 0),
		query("ext.shop.svc.cluster.local.", dns.TypeA, 0),
		query("alias.shop.svc.cluster.local.", dns.TypeSRV, 0),
	} {
		wire, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
	}
	// One server answers alone; the other forwards what is not its own to a loopback
	// upstream, and so also caches.
	// ExternalName aliases: one outside (asked upstream), one to a cluster name.
	services := append(fixture(),
		Service{Namespace: "shop", Name: "ext", ExternalName: "db.example.org"},
		Service{Namespace: "shop", Name: "alias", ExternalName: "web.default.svc.cluster.local"})
	alone := newTestServer(f, testConfig(), services)
	cfg := testConfig()
	cfg.Upstreams = []string{startUpstream(f, answerA("192.0.2.1"))}
	forwarding := newTestServer(f, cfg, services)

	f.Fuzz(func(t *testing.T, wire []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(wire); err != nil {
			return
		}
		for _, c := range []struct {
			s *Server
			w *recorder
		}{
			{alone, newRecorder("udp", "127.0.0.1")},
			{alone, newRecorder("tcp", "10.1.2.3")},
			{alone, newRecorder("udp", "203.0.113.1")},
			{forwarding, newRecorder("udp", "127.0.0.1")},
			{forwarding, newRecorder("tcp", "10.1.2.3")},
		} {
			s, w := c.s, c.w
			s.ServeDNS(w, r)
			if r.Response {
				if w.writes != 0 {
					t.Fatalf("answered a response: %v", w.msg)
				}
				continue
			}
			if w.writes != 1 {
				t.Fatalf("%d replies to %v", w.writes, r)
			}
			if w.msg.Id != r.Id || !w.msg.Response {
				t.Fatalf("reply %v does not answer query %v", w.msg, r)
			}
			if size := w.size; isUDP(w) && size > max(dns.MinMsgSize, udpSizeOf(r)) {
				t.Fatalf("UDP reply of %d bytes to %v", size, r)
			}
		}
	})
}

func udpSizeOf(r *dns.Msg) int {
	if opt := r.IsEdns0(); opt != nil {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}
