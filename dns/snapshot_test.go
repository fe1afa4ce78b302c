package dns

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestNewSnapshotRejects(t *testing.T) {
	ok := Service{Namespace: "default", Name: "web", Ports: []Port{{Name: "http", Port: 80}},
		Endpoints: []Endpoint{{Hostname: "web-0", Addr: netip.MustParseAddr("10.0.0.1"), Ready: true}}}
	tests := []struct {
		name   string
		domain string
		mutate func(*Service)
		want   error
	}{
		{"root domain", ".", func(*Service) {}, ErrInvalidConfig},
		{"domain with a bad label", "cluster_local", func(*Service) {}, ErrInvalidConfig},
		{"empty namespace", "cluster.local", func(s *Service) { s.Namespace = "" }, ErrInvalidService},
		{"uppercase name", "cluster.local", func(s *Service) { s.Name = "Web" }, ErrInvalidService},
		{"dotted name", "cluster.local", func(s *Service) { s.Name = "a.b" }, ErrInvalidService},
		{"name too long", "cluster.local", func(s *Service) { s.Name = strings.Repeat("a", 64) }, ErrInvalidService},
		{"port name not a label", "cluster.local", func(s *Service) { s.Ports[0].Name = "_http" }, ErrInvalidService},
		{"port zero", "cluster.local", func(s *Service) { s.Ports[0].Port = 0 }, ErrInvalidService},
		{"port too big", "cluster.local", func(s *Service) { s.Ports[0].Port = 70000 }, ErrInvalidService},
		{"unknown protocol", "cluster.local", func(s *Service) { s.Ports[0].Protocol = "QUIC" }, ErrInvalidService},
		{"port name twice", "cluster.local", func(s *Service) { s.Ports = append(s.Ports, s.Ports[0]) }, ErrInvalidService},
		{"hostname not a label", "cluster.local", func(s *Service) { s.Endpoints[0].Hostname = "web 0" }, ErrInvalidService},
		{"endpoint without address", "cluster.local", func(s *Service) { s.Endpoints[0].Addr = netip.Addr{} }, ErrInvalidService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := ok
			svc.Ports = slices.Clone(ok.Ports)
			svc.Endpoints = slices.Clone(ok.Endpoints)
			tt.mutate(&svc)
			_, err := NewSnapshot(tt.domain, []Service{svc})
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewSnapshot error %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := NewSnapshot("cluster.local", []Service{ok, ok}); !errors.Is(err, ErrInvalidService) {
		t.Errorf("a service listed twice: error %v, want ErrInvalidService", err)
	}
	if _, err := NewSnapshot("cluster.local", []Service{ok}); err != nil {
		t.Errorf("the valid service: %v", err)
	}
}

// TestNewSnapshotIgnoresOrder checks that every node builds the same index (and SOA
// serial) from the same services however gossip ordered them.
func TestNewSnapshotIgnoresOrder(t *testing.T) {
	services := fixture()
	a, err := NewSnapshot("cluster.local", services)
	if err != nil {
		t.Fatal(err)
	}
	reversed := slices.Clone(services)
	slices.Reverse(reversed)
	for i := range reversed {
		reversed[i].Endpoints = slices.Clone(reversed[i].Endpoints)
		slices.Reverse(reversed[i].Endpoints)
	}
	b, err := NewSnapshot("Cluster.Local.", reversed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("snapshots differ with input order:\n%v\n%v", a, b)
	}

	services[0].Endpoints[0].Ready = false
	c, err := NewSnapshot("cluster.local", services)
	if err != nil {
		t.Fatal(err)
	}
	if c.serial == a.serial {
		t.Errorf("serial %d did not change with the content", c.serial)
	}
}

// TestSnapshotLookupOwnership checks which names the snapshot claims; the rest is
// forwarded.
func TestSnapshotLookupOwnership(t *testing.T) {
	snap, err := NewSnapshot("cluster.local", fixture())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ours bool
	}{
		{"cluster.local.", true},
		{"anything.under.cluster.local.", true},
		{"notcluster.local.", false},
		{"local.", false},
		{"1.0.0.10.in-addr.arpa.", true},
		{"9.9.9.10.in-addr.arpa.", false},
		{"0.0.10.in-addr.arpa.", false},
		{"example.org.", false},
		{".", false},
	}
	for _, tt := range tests {
		_, ours := snap.lookup(dns.Question{Name: tt.name, Qtype: dns.TypeA, Qclass: dns.ClassINET}, 5, 0)
		if ours != tt.ours {
			t.Errorf("lookup(%q) ours = %t, want %t", tt.name, ours, tt.ours)
		}
	}
}

// TestHostNetworkingDuplicates covers several instances on one node (one address) and one
// instance briefly running on two nodes (one hostname, two addresses).
func TestHostNetworkingDuplicates(t *testing.T) {
	node := netip.MustParseAddr("10.0.0.1")
	svc := Service{Namespace: "default", Name: "hl", Headless: true, Ports: []Port{{Name: "http", Port: 80}},
		Endpoints: []Endpoint{
			{Hostname: "hl-0", Addr: node, Ready: true},
			{Hostname: "hl-1", Addr: node, Ready: true},
			{Hostname: "hl-1", Addr: netip.MustParseAddr("10.0.0.2"), Ready: true},
		}}
	snap, err := NewSnapshot("cluster.local", []Service{svc})
	if err != nil {
		t.Fatal(err)
	}
	answer := func(name string, qtype uint16) []string {
		res, _ := snap.lookup(dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, 5, 0)
		return show(res.answer)
	}
	for _, tt := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"hl.default.svc.cluster.local.", dns.TypeA, []string{
			"hl.default.svc.cluster.local. A 10.0.0.1", "hl.default.svc.cluster.local. A 10.0.0.2"}},
		{"hl-0.hl.default.svc.cluster.local.", dns.TypeA, []string{"hl-0.hl.default.svc.cluster.local. A 10.0.0.1"}},
		{"hl-1.hl.default.svc.cluster.local.", dns.TypeA, []string{
			"hl-1.hl.default.svc.cluster.local. A 10.0.0.1", "hl-1.hl.default.svc.cluster.local. A 10.0.0.2"}},
		{"_http._tcp.hl.default.svc.cluster.local.", dns.TypeSRV, []string{
			"_http._tcp.hl.default.svc.cluster.local. SRV 0 50 80 hl-0.hl.default.svc.cluster.local.",
			"_http._tcp.hl.default.svc.cluster.local. SRV 0 50 80 hl-1.hl.default.svc.cluster.local."}},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, []string{"1.0.0.10.in-addr.arpa. PTR hl-0.hl.default.svc.cluster.local."}},
	} {
		if got := answer(tt.name, tt.qtype); !slices.Equal(got, tt.want) {
			t.Errorf("%s %s:\n got %q\nwant %q", tt.name, dns.TypeToString[tt.qtype], got, tt.want)
		}
	}
}
