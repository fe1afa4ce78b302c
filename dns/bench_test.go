package dns

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// benchServices is n Services of three ready instances each, every tenth one headless with
// a named port, spread over 250 addresses as host networking would share them.
func benchServices(n int) []Service {
	services := make([]Service, n)
	for i := range services {
		svc := Service{Namespace: "ns" + fmt.Sprint(i%10), Name: fmt.Sprintf("svc%d", i), Headless: i%10 == 0,
			Ports: []Port{{Name: "http", Port: 8080}}}
		for j := range 3 {
			k := (i*3 + j) % 250
			svc.Endpoints = append(svc.Endpoints, Endpoint{Hostname: fmt.Sprintf("svc%d-%d", i, j),
				Addr: netip.AddrFrom4([4]byte{10, 0, byte(k / 250), byte(k%250 + 1)}), Ready: true})
		}
		services[i] = svc
	}
	return services
}

// packWriter packs replies as the real server does, into a reused buffer.
type packWriter struct {
	recorder
	buf []byte
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	out, err := m.PackBuffer(w.buf)
	w.buf = out[:0]
	return err
}

// BenchmarkServeDNS measures the handler alone (lookup, message building, truncation
// check, packing) on 1,000 services of 3 instances.
func BenchmarkServeDNS(b *testing.B) {
	s := newTestServer(b, testConfig(), benchServices(1000))
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"A", "svc123.ns3.svc.cluster.local.", dns.TypeA},
		{"SRV-headless", "_http._tcp.svc120.ns0.svc.cluster.local.", dns.TypeSRV},
		{"NXDOMAIN", "nope.ns3.svc.cluster.local.", dns.TypeA},
		{"PTR", "1.0.0.10.in-addr.arpa.", dns.TypePTR},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &packWriter{recorder: recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}, buf: make([]byte, 0, 4096)}
			q := query(bc.qname, bc.qtype, 1232)
			b.ReportAllocs()
			for b.Loop() {
				s.ServeDNS(w, q)
			}
		})
	}
}

// BenchmarkNewSnapshot measures building the index the agent swaps in on every change.
func BenchmarkNewSnapshot(b *testing.B) {
	services := benchServices(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewSnapshot("cluster.local", services); err != nil {
			b.Fatal(err)
		}
	}
}
