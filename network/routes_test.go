package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// routesTestConfig is a valid config for node 10.244.1.0/24 at 192.168.77.11.
func routesTestConfig(mode RouteMode) RoutesConfig {
	return RoutesConfig{
		Mode:        mode,
		LocalAddr:   netip.MustParseAddr("192.168.77.11"),
		LocalSubnet: netip.MustParsePrefix("10.244.1.0/24"),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
	}
}

func TestRoutesConfigDefaultsValidate(t *testing.T) {
	cfg := routesTestConfig("").withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if cfg.Mode != RouteModeVXLAN || cfg.VXLAN.Name != "shoal.vxlan" || cfg.VXLAN.VNI != 1 || cfg.VXLAN.Port != 8472 || cfg.Logger == nil {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestRoutesConfigRejects(t *testing.T) {
	for name, change := range map[string]func(*RoutesConfig){
		"unknown mode":              func(c *RoutesConfig) { c.Mode = "bgp" },
		"IPv6 cluster CIDR":         func(c *RoutesConfig) { c.ClusterCIDR = netip.MustParsePrefix("fd00::/64") },
		"no cluster CIDR":           func(c *RoutesConfig) { c.ClusterCIDR = netip.Prefix{} },
		"local subnet outside":      func(c *RoutesConfig) { c.LocalSubnet = netip.MustParsePrefix("10.245.1.0/24") },
		"local subnet wider":        func(c *RoutesConfig) { c.LocalSubnet = netip.MustParsePrefix("10.0.0.0/8") },
		"no local address":          func(c *RoutesConfig) { c.LocalAddr = netip.Addr{} },
		"loopback local address":    func(c *RoutesConfig) { c.LocalAddr = netip.MustParseAddr("127.0.0.1") },
		"local address in cluster":  func(c *RoutesConfig) { c.LocalAddr = netip.MustParseAddr("10.244.9.9") },
		"16-byte device name":       func(c *RoutesConfig) { c.VXLAN.Name = "shoal.vxlan.1234" },
		"device name with a slash":  func(c *RoutesConfig) { c.VXLAN.Name = "shoal/vx" },
		"device name with a space":  func(c *RoutesConfig) { c.VXLAN.Name = "shoal vx" },
		"device name dot dot":       func(c *RoutesConfig) { c.VXLAN.Name = ".." },
		"VNI over 24 bits":          func(c *RoutesConfig) { c.VXLAN.VNI = 1 << 24 },
		"MTU below IPv4's minimum":  func(c *RoutesConfig) { c.VXLAN.MTU = 67 },
		"MTU above the kernel's":    func(c *RoutesConfig) { c.VXLAN.MTU = 65536 },
		"host-gw with IPv6 address": func(c *RoutesConfig) { c.Mode, c.LocalAddr = RouteModeHostGW, netip.MustParseAddr("fd00::1") },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := routesTestConfig(RouteModeVXLAN)
			change(&cfg)
			cfg = cfg.withDefaults()
			if err := cfg.validate(); !errors.Is(err, ErrInvalidRoutesConfig) {
				t.Fatalf("validate = %v, want ErrInvalidRoutesConfig", err)
			}
		})
	}
	cfg := routesTestConfig(RouteModeVXLAN)
	cfg.VXLAN.Name = "shoal.vxlan.123" // exactly 15 bytes
	if cfg = cfg.withDefaults(); cfg.validate() != nil {
		t.Fatalf("a 15-byte name is valid: %v", cfg.validate())
	}
}

func TestVTEPMAC(t *testing.T) {
	a := VTEPMAC(netip.MustParsePrefix("10.244.1.0/24"))
	if got, want := a.String(), "0e:18:0a:f4:01:00"; got != want {
		t.Fatalf("VTEPMAC = %s, want %s", got, want)
	}
	if a[0]&0x02 == 0 || a[0]&0x01 != 0 {
		t.Fatalf("VTEPMAC %s is not a locally administered unicast address", a)
	}
	if b := VTEPMAC(netip.MustParsePrefix("10.244.1.77/24")); b.String() != a.String() {
		t.Fatalf("VTEPMAC depends on host bits: %s vs %s", b, a)
	}
	seen := map[string]netip.Prefix{}
	for _, s := range []string{"10.244.1.0/24", "10.244.2.0/24", "10.244.1.0/25", "10.244.1.128/25", "10.245.1.0/24", "0.0.0.0/0"} {
		p := netip.MustParsePrefix(s)
		m := VTEPMAC(p).String()
		if other, dup := seen[m]; dup {
			t.Fatalf("%v and %v share the VTEP MAC %s", p, other, m)
		}
		seen[m] = p
	}
	if m := VTEPMAC(netip.MustParsePrefix("fd00::/64")); m != nil {
		t.Fatalf("VTEPMAC of an IPv6 prefix = %s, want nil", m)
	}
}

func TestAcceptPeers(t *testing.T) {
	cfg := routesTestConfig(RouteModeVXLAN).withDefaults()
	peer := func(node, addr, subnet string) Peer {
		p := Peer{Node: node, Subnet: netip.MustParsePrefix(subnet)}
		if addr != "" {
			p.Addr = netip.MustParseAddr(addr)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		peers    []Peer
		accepted []string // nodes, in order
		refused  []string // a fragment of each refusal, in order
	}{
		{"valid", []Peer{peer("b", "192.168.77.12", "10.244.2.0/24"), peer("c", "192.168.77.13", "10.244.3.0/24")}, []string{"b", "c"}, nil},
		{"host bits are masked", []Peer{peer("b", "192.168.77.12", "10.244.2.9/24")}, []string{"b"}, nil},
		{"outside the cluster", []Peer{peer("x", "192.168.77.12", "8.8.8.0/24")}, nil, []string{"outside the cluster CIDR"}},
		{"the whole cluster", []Peer{peer("x", "192.168.77.12", "10.244.0.0/16")}, nil, []string{"overlaps this node's"}},
		{"the default route", []Peer{peer("x", "192.168.77.12", "0.0.0.0/0")}, nil, []string{"outside the cluster CIDR"}},
		{"this node's subnet", []Peer{peer("x", "192.168.77.12", "10.244.1.128/25")}, nil, []string{"overlaps this node's"}},
		{"no name", []Peer{peer("", "192.168.77.12", "10.244.2.0/24")}, nil, []string{"no node name"}},
		{"no address", []Peer{peer("x", "", "10.244.2.0/24")}, nil, []string{"not a unicast IPv4"}},
		{"multicast address", []Peer{peer("x", "224.0.0.1", "10.244.2.0/24")}, nil, []string{"not a unicast IPv4"}},
		{"broadcast address", []Peer{peer("x", "255.255.255.255", "10.244.2.0/24")}, nil, []string{"not a unicast IPv4"}},
		{"IPv6 address", []Peer{peer("x", "fd00::2", "10.244.2.0/24")}, nil, []string{"not a unicast IPv4"}},
		{"address in the cluster", []Peer{peer("x", "10.244.9.1", "10.244.2.0/24")}, nil, []string{"inside the cluster CIDR"}},
		{"this node's address", []Peer{peer("x", "192.168.77.11", "10.244.2.0/24")}, nil, []string{"this node's"}},
		{"mapped IPv4 address", []Peer{peer("b", "::ffff:192.168.77.12", "10.244.2.0/24")}, []string{"b"}, nil},
		{"same subnet twice", []Peer{
			peer("b", "192.168.77.12", "10.244.2.0/24"), peer("c", "192.168.77.13", "10.244.3.0/24"), peer("d", "192.168.77.14", "10.244.2.0/24"),
		}, []string{"c"}, []string{`overlaps node "d"`, `overlaps node "b"`}},
		{"a subnet inside another", []Peer{
			peer("b", "192.168.77.12", "10.244.2.0/24"), peer("evil", "192.168.77.99", "10.244.2.128/26"),
		}, nil, []string{`node "b"`, `node "evil"`}},
		{"nested three deep", []Peer{
			peer("a", "192.168.77.2", "10.244.128.0/17"), peer("b", "192.168.77.3", "10.244.200.0/24"),
			peer("c", "192.168.77.4", "10.244.200.0/25"), peer("d", "192.168.77.5", "10.244.64.0/24"),
		}, []string{"d"}, []string{`node "a"`, `node "b"`, `node "c"`}},
		{"node twice", []Peer{peer("b", "192.168.77.12", "10.244.2.0/24"), peer("b", "192.168.77.12", "10.244.3.0/24")}, nil, []string{"listed twice", "listed twice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accepted, errs := cfg.acceptPeers(tc.peers)
			var nodes []string
			for _, p := range accepted {
				nodes = append(nodes, p.Node)
				if p.Subnet != p.Subnet.Masked() || !p.Addr.Is4() {
					t.Errorf("accepted %+v is not canonical", p)
				}
			}
			if strings.Join(nodes, ",") != strings.Join(tc.accepted, ",") {
				t.Errorf("accepted %v, want %v", nodes, tc.accepted)
			}
			if len(errs) != len(tc.refused) {
				t.Fatalf("refusals %v, want %d", errs, len(tc.refused))
			}
			for i, err := range errs {
				if !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), tc.refused[i]) {
					t.Errorf("refusal %d = %v, want ErrPeerRefused with %q", i, err, tc.refused[i])
				}
			}
		})
	}
}

func TestWantEntries(t *testing.T) {
	peers := []Peer{
		{Node: "b", Addr: netip.MustParseAddr("192.168.20.2"), Subnet: netip.MustParsePrefix("10.244.2.0/24")},
		{Node: "c", Addr: netip.MustParseAddr("192.168.30.2"), Subnet: netip.MustParsePrefix("10.244.3.0/24")},
	}
	hostGW := routesTestConfig(RouteModeHostGW).withDefaults()
	var want routeEntries
	hostGW.wantEntries(&want, peers, 0)
	if got := want.routes[peers[0].Subnet]; got.gw != peers[0].Addr || got.link != 0 || got.node != "b" {
		t.Fatalf("host-gw route to b = %+v", got)
	}
	if len(want.routes) != 2 || len(want.neighs) != 0 || len(want.fdb) != 0 {
		t.Fatalf("host-gw entries: %+v", want)
	}

	vxlan := routesTestConfig(RouteModeVXLAN).withDefaults()
	want = routeEntries{}
	vxlan.wantEntries(&want, peers, 7)
	vtep := netip.MustParseAddr("10.244.3.0")
	mac, _ := vtepMACOf(peers[1].Subnet)
	if got := want.routes[peers[1].Subnet]; got.gw != vtep || got.link != 7 {
		t.Fatalf("vxlan route to c = %+v, want via %v on link 7", got, vtep)
	}
	if want.neighs[vtep] != mac || want.fdb[mac] != peers[1].Addr {
		t.Fatalf("vxlan entries for c: neighbour %v, fdb %v", want.neighs[vtep], want.fdb[mac])
	}
	if len(want.routes) != 2 || len(want.neighs) != 2 || len(want.fdb) != 2 {
		t.Fatalf("vxlan entries: %+v", want)
	}
	vxlan.wantEntries(&want, peers[:1], 7) // refilled: c's entries go
	if len(want.routes) != 1 || len(want.neighs) != 1 || len(want.fdb) != 1 {
		t.Fatalf("vxlan entries refilled for b alone: %+v", want)
	}
}

// FuzzAcceptPeers checks that whatever peers claim, accepted subnets lie inside the cluster
// range, outside this node's subnet and apart from one another.
func FuzzAcceptPeers(f *testing.F) {
	f.Add([]byte{10, 244, 2, 0, 24, 192, 168, 0, 2, 10, 244, 2, 128, 25, 192, 168, 0, 3})
	f.Add([]byte{10, 244, 1, 0, 16, 192, 168, 0, 2, 0, 0, 0, 0, 0, 10, 244, 3, 0})
	cfg := routesTestConfig(RouteModeVXLAN).withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		var peers []Peer
		for i := 0; i+9 <= len(data); i += 9 {
			d := data[i : i+9]
			subnet, _ := netip.AddrFrom4([4]byte(d[0:4])).Prefix(int(d[4] % 33))
			peers = append(peers, Peer{Node: string(rune('a' + i%26)), Subnet: subnet, Addr: netip.AddrFrom4([4]byte(d[5:9]))})
		}
		accepted, errs := cfg.acceptPeers(peers)
		if len(accepted)+len(errs) != len(peers) {
			t.Fatalf("%d accepted + %d refused != %d peers", len(accepted), len(errs), len(peers))
		}
		for i, p := range accepted {
			if !prefixWithin(p.Subnet, cfg.ClusterCIDR) || p.Subnet.Overlaps(cfg.LocalSubnet) || cfg.ClusterCIDR.Contains(p.Addr) {
				t.Fatalf("accepted unsafe claim %+v", p)
			}
			for _, q := range accepted[i+1:] {
				if p.Subnet.Overlaps(q.Subnet) || p.Node == q.Node {
					t.Fatalf("accepted clashing claims %+v and %+v", p, q)
				}
			}
		}
	})
}
