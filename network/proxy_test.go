package network

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/binaryutil"
)

// Unit tests of the proxy's pure parts: config, checks, the index, the transactions.
// The kernel tests are in proxy_kernel_test.go.

func proxyTestConfig() ProxyConfig {
	return ProxyConfig{ClusterCIDR: proxyTestCluster, PodSubnet: proxyTestPodSubnet}.withDefaults()
}

func TestProxyConfigDefaultsValidate(t *testing.T) {
	cfg := ProxyConfig{ClusterCIDR: netip.MustParsePrefix("10.244.3.0/16")}.withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.Table != "shoal" || cfg.Logger == nil {
		t.Errorf("defaults: table %q, logger %v", cfg.Table, cfg.Logger)
	}
	if want := netip.MustParsePrefix("10.244.0.0/16"); cfg.ClusterCIDR != want || cfg.PodSubnet != want {
		t.Errorf("defaults: cluster %v, pod subnet %v; want both %v", cfg.ClusterCIDR, cfg.PodSubnet, want)
	}

	for _, c := range []struct {
		name string
		cfg  ProxyConfig
	}{
		{"no cluster CIDR", ProxyConfig{}},
		{"IPv6 cluster CIDR", ProxyConfig{ClusterCIDR: netip.MustParsePrefix("fd00::/48")}},
		{"whole space", ProxyConfig{ClusterCIDR: netip.MustParsePrefix("0.0.0.0/0")}},
		{"pod subnet outside", ProxyConfig{ClusterCIDR: proxyTestCluster, PodSubnet: netip.MustParsePrefix("10.1.0.0/24")}},
		{"pod subnet wider", ProxyConfig{ClusterCIDR: proxyTestCluster, PodSubnet: netip.MustParsePrefix("10.0.0.0/8")}},
		{"table with a space", ProxyConfig{ClusterCIDR: proxyTestCluster, Table: "my table"}},
		{"table starting with a digit", ProxyConfig{ClusterCIDR: proxyTestCluster, Table: "1table"}},
		{"long table", ProxyConfig{ClusterCIDR: proxyTestCluster, Table: strings.Repeat("t", 65)}},
	} {
		cfg := c.cfg.withDefaults()
		if err := cfg.validate(); !errors.Is(err, ErrInvalidProxyConfig) {
			t.Errorf("%s: %v, want ErrInvalidProxyConfig", c.name, err)
		}
		if _, err := NewProxy(c.cfg); !errors.Is(err, ErrInvalidProxyConfig) {
			t.Errorf("%s: NewProxy: %v, want ErrInvalidProxyConfig", c.name, err)
		}
	}
}

func proxyEP(addr string, port uint16) Endpoint { return Endpoint{netip.MustParseAddr(addr), port} }

// proxySvc is a valid Service with one TCP port 80 per name given, or "http" when none is.
func proxySvc(name, vip string, eps ...Endpoint) Service {
	return Service{Namespace: "ns", Name: name, VIP: netip.MustParseAddr(vip), Ports: []ServicePort{
		{Name: "http", Protocol: ProtocolTCP, Port: 80, Endpoints: eps},
	}}
}

func TestProxyCheckService(t *testing.T) {
	cfg := proxyTestConfig()
	good := proxySvc("web", "10.96.0.1", proxyEP("10.244.1.2", 8080))
	for _, c := range []struct {
		name    string
		edit    func(s *Service)
		ports   []string // IDs of the ports that pass
		refused []string // substrings of the refusals, in order
	}{
		{"valid", func(*Service) {}, []string{"ns/web/tcp/http"}, nil},
		{"empty namespace", func(s *Service) { s.Namespace = "" }, nil, []string{"namespace is empty"}},
		{"slash in name", func(s *Service) { s.Name = "a/b" }, nil, []string{"want letters"}},
		{"long name", func(s *Service) { s.Name = strings.Repeat("n", 254) }, nil, []string{"at most 253"}},
		{"IPv6 VIP", func(s *Service) { s.VIP = netip.MustParseAddr("fd00::1") }, nil, []string{"unicast IPv4"}},
		{"loopback VIP", func(s *Service) { s.VIP = netip.MustParseAddr("127.0.0.5") }, nil, []string{"unicast IPv4"}},
		{"no VIP", func(s *Service) { s.VIP = netip.Addr{} }, nil, []string{"unicast IPv4"}},
		{"multicast VIP", func(s *Service) { s.VIP = netip.MustParseAddr("224.0.0.1") }, nil, []string{"unicast IPv4"}},
		{"VIP in the pod range", func(s *Service) { s.VIP = netip.MustParseAddr("10.244.9.9") }, nil, []string{"inside the cluster CIDR"}},
		{"mapped VIP", func(s *Service) { s.VIP = netip.MustParseAddr("::ffff:10.96.0.1") }, []string{"ns/web/tcp/http"}, nil},
		{"too many ports", func(s *Service) { s.Ports = make([]ServicePort, MaxProxyPortsPerService+1) }, nil, []string{"at most 100"}},
		{"port 0", func(s *Service) { s.Ports[0].Port = 0 }, nil, []string{"port 0"}},
		{"SCTP", func(s *Service) { s.Ports[0].Protocol = "SCTP" }, nil, []string{`protocol "SCTP"`}},
		{"lower-case protocol", func(s *Service) { s.Ports[0].Protocol = "tcp" }, nil, []string{`protocol "tcp"`}},
		{"bad port name", func(s *Service) { s.Ports[0].Name = "a b" }, nil, []string{"want letters"}},
		{"port names twice", func(s *Service) {
			s.Ports = append(s.Ports, ServicePort{Name: "http", Protocol: ProtocolUDP, Port: 53})
		}, []string{"ns/web/tcp/http"}, []string{"name used twice"}},
		{"second port", func(s *Service) {
			s.Ports = append(s.Ports, ServicePort{Name: "dns", Protocol: ProtocolUDP, Port: 53})
		}, []string{"ns/web/tcp/http", "ns/web/udp/dns"}, nil},
		{"too many endpoints", func(s *Service) {
			s.Ports[0].Endpoints = make([]Endpoint, MaxProxyEndpointsPerPort+1)
		}, nil, []string{"at most 1000"}},
		{"bad endpoints left out", func(s *Service) {
			s.Ports[0].Endpoints = []Endpoint{proxyEP("10.244.1.3", 0), proxyEP("0.0.0.0", 80), proxyEP("fd00::1", 80), {}, proxyEP("10.244.1.2", 8080)}
		}, []string{"ns/web/tcp/http"}, []string{"endpoint 10.244.1.3:0", "endpoint 0.0.0.0:80", "endpoint [fd00::1]:80", "endpoint invalid"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := cloneProxyService(&good)
			c.edit(&s)
			ports, refused := cfg.checkService(&s)
			var ids []string
			for _, p := range ports {
				ids = append(ids, p.id)
			}
			if !slices.Equal(ids, c.ports) {
				t.Errorf("ports %q, want %q", ids, c.ports)
			}
			if len(refused) != len(c.refused) {
				t.Fatalf("refused %q, want %d refusals like %q", refused, len(c.refused), c.refused)
			}
			for i, r := range refused {
				if !strings.Contains(r, c.refused[i]) {
					t.Errorf("refusal %d: %q, want it to hold %q", i, r, c.refused[i])
				}
			}
		})
	}
}

func TestProxyCheckServiceNormalisesEndpoints(t *testing.T) {
	cfg := proxyTestConfig()
	s := proxySvc("web", "10.96.0.1", proxyEP("10.244.1.3", 8080), proxyEP("::ffff:10.244.1.2", 8080), proxyEP("10.244.1.3", 8080), proxyEP("10.244.1.2", 80))
	ports, refused := cfg.checkService(&s)
	if len(refused) != 0 || len(ports) != 1 {
		t.Fatalf("ports %v, refused %v", ports, refused)
	}
	want := []Endpoint{proxyEP("10.244.1.2", 80), proxyEP("10.244.1.2", 8080), proxyEP("10.244.1.3", 8080)}
	if !slices.Equal(ports[0].endpoints, want) {
		t.Errorf("endpoints %v, want %v (sorted, distinct, unmapped)", ports[0].endpoints, want)
	}
}

// acceptProxyFromScratch is the index's rules applied to services at once, the simple way: the
// reference the incremental index must agree with.
func acceptProxyFromScratch(cfg *ProxyConfig, services []Service) map[string]*proxyPort {
	listed := map[proxyServiceName]int{}
	for _, s := range services {
		listed[proxyServiceName{s.Namespace, s.Name}]++
	}
	var candidates []*proxyPort
	for i := range services {
		if listed[proxyServiceName{services[i].Namespace, services[i].Name}] == 1 {
			ports, _ := cfg.checkService(&services[i])
			candidates = append(candidates, ports...)
		}
	}
	owners := map[proxyVIPKey]*proxyPort{}
	for _, p := range candidates {
		for _, k := range p.keys() {
			if o, ok := owners[k]; !ok || p.id < o.id {
				owners[k] = p
			}
		}
	}
	accepted := map[string]*proxyPort{}
	for _, p := range candidates {
		if !slices.ContainsFunc(p.keys(), func(k proxyVIPKey) bool { return owners[k] != p }) {
			accepted[p.id] = p
		}
	}
	return accepted
}

// randomProxyServices returns a small world of Services that often collide: few names, VIPs,
// ports and NodePorts to pick from, invalid fields now and then.
func randomProxyServices(r *rand.Rand) []Service {
	var services []Service
	for range r.IntN(8) {
		s := Service{
			Namespace: []string{"a", "b"}[r.IntN(2)],
			Name:      []string{"x", "y", "z", ""}[r.IntN(4)],
			VIP:       netip.AddrFrom4([4]byte{10, 96, 0, byte(1 + r.IntN(3))}),
		}
		for j := range r.IntN(3) {
			sp := ServicePort{
				Name:     []string{"p", "q"}[j%2],
				Protocol: []Protocol{ProtocolTCP, ProtocolUDP, "SCTP"}[r.IntN(3)],
				Port:     uint16(r.IntN(3)) * 80,
			}
			if r.IntN(2) == 0 {
				sp.NodePort = 30000 + uint16(r.IntN(3))
			}
			for range r.IntN(4) {
				sp.Endpoints = append(sp.Endpoints, Endpoint{netip.AddrFrom4([4]byte{10, 244, 1, byte(r.IntN(4))}), 8080})
			}
			s.Ports = append(s.Ports, sp)
		}
		services = append(services, s)
	}
	return services
}

// TestProxyIndexAgreesWithFromScratch drives the index with whole sets (Sync), and with
// what changed between them (Update): either way it must program what a from-scratch
// reading of the set programs.
func TestProxyIndexAgreesWithFromScratch(t *testing.T) {
	t.Run("whole sets", func(t *testing.T) { testProxyIndexAgrees(t, false) })
	t.Run("changes only", func(t *testing.T) { testProxyIndexAgrees(t, true) })
}

// changesBetween is what Update is given to go from the set prev to next: every copy of a
// Service whose copies differ, and the names of those next does not have.
func changesBetween(prev, next []Service) ([]Service, []ServiceKey) {
	group := func(list []Service) map[ServiceKey][]Service {
		out := map[ServiceKey][]Service{}
		for _, s := range list {
			k := ServiceKey{Namespace: s.Namespace, Name: s.Name}
			out[k] = append(out[k], s)
		}
		return out
	}
	before, after := group(prev), group(next)
	var changed []Service
	var removed []ServiceKey
	for k, copies := range after {
		if !reflect.DeepEqual(before[k], copies) {
			changed = append(changed, copies...)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	return changed, removed
}

func testProxyIndexAgrees(t *testing.T, changesOnly bool) {
	cfg := proxyTestConfig()
	r := rand.New(rand.NewPCG(1, 2))
	x := newProxyIndex(&cfg)
	programmed := map[string]*proxyPort{} // what the changes, applied one after another, build
	var prev []Service
	for step := range 3000 {
		services := randomProxyServices(r)
		if step%3 == 0 { // sometimes the same set, in another order
			r.Shuffle(len(services), func(i, j int) { services[i], services[j] = services[j], services[i] })
		}
		var changes []proxyChange
		var err error
		if changesOnly && step > 0 {
			changed, removed := changesBetween(prev, services)
			changes, _, err = x.updateSome(changed, removed)
		} else {
			changes, _, err = x.update(services)
		}
		prev = services
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			id := ""
			if c.old != nil {
				id = c.old.id
				if programmed[id] != c.old {
					t.Fatalf("step %d: change from %s, which was not programmed", step, id)
				}
				delete(programmed, id)
			}
			if c.new != nil {
				if id != "" && c.new.id != id {
					t.Fatalf("step %d: change from %s to %s", step, id, c.new.id)
				}
				programmed[c.new.id] = c.new
			}
		}
		want := acceptProxyFromScratch(&cfg, services)
		for _, got := range []map[string]*proxyPort{x.accepted, programmed} {
			if len(got) != len(want) {
				t.Fatalf("step %d: programs %v, want %v (services %+v)", step, slices.Sorted(proxyIDsOf(got)), slices.Sorted(proxyIDsOf(want)), services)
			}
			for id, w := range want {
				if g := got[id]; g == nil || !g.equal(w) {
					t.Fatalf("step %d: %s is %+v, want %+v", step, id, g, w)
				}
			}
		}
	}
}

func proxyIDsOf[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestProxyIndexRefusals(t *testing.T) {
	cfg := proxyTestConfig()
	x := newProxyIndex(&cfg)
	twice := proxySvc("twice", "10.96.0.9")
	services := []Service{
		proxySvc("b-second", "10.96.0.1", proxyEP("10.244.1.2", 80)),
		proxySvc("a-first", "10.96.0.1", proxyEP("10.244.1.3", 80)),
		twice, twice,
		proxySvc("bad", "10.244.0.1"),
		proxySvc("ok", "10.96.0.2"),
	}
	_, refused, err := x.update(services)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, r := range refused {
		if !errors.Is(r, ErrServiceRefused) {
			t.Errorf("refusal %v does not wrap ErrServiceRefused", r)
		}
		msgs = append(msgs, r.Error())
	}
	for _, want := range []string{
		"ns/b-second/tcp/http: TCP 10.96.0.1:80 is already ns/a-first/tcp/http's",
		"ns/twice/tcp/http: service ns/twice is listed 2 times",
		"service ns/bad: virtual IP 10.244.0.1 is inside the cluster CIDR",
	} {
		if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
			t.Errorf("refusals %q lack %q", msgs, want)
		}
	}
	if len(msgs) != 3 {
		t.Errorf("refusals %q, want 3", msgs)
	}
	if got := slices.Sorted(proxyIDsOf(x.accepted)); !slices.Equal(got, []string{"ns/a-first/tcp/http", "ns/ok/tcp/http"}) {
		t.Errorf("programs %q", got)
	}
	// The refusals are reported again by the next Sync, though nothing changed.
	if _, again, _ := x.update(services); len(again) != 3 {
		t.Errorf("second update: refusals %v, want the same 3", again)
	}
}

func TestProxyIndexBoundsRefusals(t *testing.T) {
	cfg := proxyTestConfig()
	x := newProxyIndex(&cfg)
	var services []Service
	for i := range 500 {
		services = append(services, proxySvc(fmt.Sprint("s", i), "10.244.0.1")) // all inside the pod range
	}
	_, refused, err := x.update(services)
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != maxProxyRefusals+1 || !strings.Contains(refused[maxProxyRefusals].Error(), "400 more") {
		t.Errorf("%d refusals, last %v; want %d and a count of the rest", len(refused), refused[len(refused)-1], maxProxyRefusals+1)
	}
}

func TestProxyIndexLimits(t *testing.T) {
	cfg := proxyTestConfig()
	x := newProxyIndex(&cfg)
	if _, _, err := x.update([]Service{proxySvc("web", "10.96.0.1", proxyEP("10.244.1.2", 80))}); err != nil {
		t.Fatal(err)
	}
	manyEndpoints := proxySvc("big", "10.96.0.2")
	manyEndpoints.Ports[0].Endpoints = make([]Endpoint, MaxProxyEndpointsPerPort)
	manyPorts := Service{Ports: make([]ServicePort, MaxProxyServicePorts+1)}
	for _, c := range []struct {
		name     string
		services []Service
	}{
		{"services", make([]Service, MaxProxyServices+1)},
		{"ports", []Service{manyPorts}},
		{"endpoints", slices.Repeat([]Service{manyEndpoints}, MaxProxyEndpoints/MaxProxyEndpointsPerPort+1)},
	} {
		changes, _, err := x.update(c.services)
		if !errors.Is(err, ErrProxyLimit) || changes != nil {
			t.Errorf("%s: %v, %v; want ErrProxyLimit and no change", c.name, changes, err)
		}
	}
	if len(x.accepted) != 1 || len(x.services) != 1 {
		t.Errorf("after refused calls the index holds %v", x.accepted)
	}
	// Update counts what the index holds already: endpoints added a little at a time
	// are refused once the whole would be over the limit.
	batch := slices.Repeat([]Service{manyEndpoints}, 1)
	for i := 0; ; i++ {
		batch[0].Name = fmt.Sprint("big", i)
		changes, _, err := x.updateSome(batch, nil)
		if errors.Is(err, ErrProxyLimit) {
			if changes != nil || x.endpoints > MaxProxyEndpoints {
				t.Errorf("refused with %v changes, %d endpoints held", changes, x.endpoints)
			}
			break
		}
		if err != nil || i > MaxProxyEndpoints/MaxProxyEndpointsPerPort {
			t.Fatalf("update %d: %v (%d endpoints held): the limit never applied", i, err, x.endpoints)
		}
	}
	if x.services[proxyServiceName{"ns", "big0"}] == nil {
		t.Fatal("big0 is not held")
	}
	held := x.endpoints
	if _, _, err := x.updateSome(nil, []ServiceKey{{Namespace: "ns", Name: "big0"}}); err != nil || x.services[proxyServiceName{"ns", "big0"}] != nil || x.endpoints != held-MaxProxyEndpointsPerPort {
		t.Errorf("removing one: %v, %d endpoints held, want %d", err, x.endpoints, held-MaxProxyEndpointsPerPort)
	}
}

// proxyBenchWorld is n valid Services with three endpoints each, indexed.
func proxyBenchWorld(t testing.TB, n int) (*proxyIndex, []Service) {
	cfg := ProxyConfig{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/14")}.withDefaults()
	x := newProxyIndex(&cfg)
	services := proxyBenchServices(n)
	if _, refused, err := x.update(services); err != nil || len(refused) > 0 {
		t.Fatalf("%v %v", refused, err)
	}
	return x, services
}

func TestProxyOneEndpointChangeTouchesOneService(t *testing.T) {
	x, services := proxyBenchWorld(t, 1000)
	sizes := map[int]bool{3: true}
	port := &services[500].Ports[0]

	// Replace one endpoint: one data element out, one in; no chain, no verdict.
	port.Endpoints[2].Addr = netip.MustParseAddr("10.250.0.1")
	changes, _, _ := x.update(services)
	if len(changes) != 1 || changes[0].new.id != "bench/svc-500/tcp/http" {
		t.Fatalf("changes %+v, want one, of svc-500", changes)
	}
	txn := diffProxyChanges(changes, sizes)
	if len(txn.sizes) != 0 || len(txn.del) != 1 || len(txn.add) != 1 ||
		txn.add[0].key.set != proxyServiceEndpointsMap || txn.add[0].val.ep.Addr != port.Endpoints[2].Addr {
		t.Errorf("replace: %+v", txn)
	}

	// Remove one: its slot goes, and the VIP moves to the spread chain for two.
	port.Endpoints = port.Endpoints[:2]
	changes, _, _ = x.update(services)
	txn = diffProxyChanges(changes, sizes)
	if !slices.Equal(txn.sizes, []int{2}) || len(txn.del) != 2 || len(txn.add) != 1 ||
		txn.add[0].key.set != proxyServiceIPsMap || txn.add[0].val.to != "spread-2" {
		t.Errorf("scale down: %+v", txn)
	}

	// No change: nothing.
	if changes, _, _ = x.update(services); len(changes) != 0 {
		t.Errorf("no change: %+v", changes)
	}
}

func TestProxyVIPMovesBetweenServicesInOneSync(t *testing.T) {
	cfg := proxyTestConfig()
	x := newProxyIndex(&cfg)
	x.update([]Service{proxySvc("old", "10.96.0.1", proxyEP("10.244.1.2", 80))})
	changes, _, _ := x.update([]Service{proxySvc("new", "10.96.0.1", proxyEP("10.244.1.2", 80))})
	txn := diffProxyChanges(changes, map[int]bool{1: true})
	// The VIP's elements keep their value (only the comment changes on service-ips).
	if len(txn.del) != 1 || len(txn.add) != 1 || txn.add[0].val.comment != "ns/new/tcp/http" {
		t.Errorf("%+v", txn)
	}
}

func TestProxyRender(t *testing.T) {
	cfg := proxyTestConfig()
	s := proxySvc("web", "10.96.0.1", proxyEP("10.244.1.3", 8080), proxyEP("10.244.1.2", 8080))
	s.Ports[0].NodePort = 30080
	ports, _ := cfg.checkService(&s)
	plan := ports[0].render()
	var got []string
	for _, e := range plan.elems {
		to := e.val.to
		if e.val.ep.Addr.IsValid() {
			to = e.val.ep.String()
		}
		got = append(got, fmt.Sprintf("%s %v %d %v -> %s", e.key.set, e.key.vip.vip, e.key.vip.port, e.key.slot, to))
	}
	want := []string{
		"service-ips 10.96.0.1 80 0 -> spread-2",
		"service-endpoints 10.96.0.1 80 0 -> 10.244.1.2:8080",
		"service-endpoints 10.96.0.1 80 1 -> 10.244.1.3:8080",
		"service-nodeports invalid IP 30080 0 -> external-2",
		"nodeport-endpoints invalid IP 30080 0 -> 10.244.1.2:8080",
		"nodeport-endpoints invalid IP 30080 1 -> 10.244.1.3:8080",
	}
	if plan.n != 2 || !slices.Equal(got, want) {
		t.Errorf("render: n %d\n%s\nwant\n%s", plan.n, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	s.Ports[0].Endpoints = nil
	ports, _ = cfg.checkService(&s)
	plan = ports[0].render()
	if plan.n != 0 || len(plan.elems) != 2 || plan.elems[0].key.set != proxyNoEndpointServices ||
		plan.elems[1].key.set != proxyNoEndpointNodePorts {
		t.Errorf("render without endpoints: %+v", plan)
	}
}

func TestProxySetElementEncoding(t *testing.T) {
	vip := proxyVIPKey{netip.MustParseAddr("10.96.0.1"), ProtocolUDP, 53}
	el := proxySetElement(proxyElem{proxyElemKey{proxyServiceEndpointsMap, vip, 2}, proxyElemVal{ep: proxyEP("10.244.1.2", 5353)}})
	wantKey := append([]byte{10, 96, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0}, binaryutil.NativeEndian.PutUint32(2)...)
	if !slices.Equal(el.Key, wantKey) || !slices.Equal(el.Val, []byte{10, 244, 1, 2, 0x14, 0xe9, 0, 0}) || el.VerdictData != nil {
		t.Errorf("endpoint element: key %v val %v, want %v %v", el.Key, el.Val, wantKey, []byte{10, 244, 1, 2, 0x14, 0xe9, 0, 0})
	}
	node := proxyVIPKey{proto: ProtocolTCP, port: 30080}
	el = proxySetElement(proxyElem{proxyElemKey{proxyServiceNodePortsMap, node, 0}, proxyElemVal{to: "external-3", comment: "ns/web/tcp/http"}})
	if !slices.Equal(el.Key, []byte{6, 0, 0, 0, 0x75, 0x80, 0, 0}) || el.VerdictData == nil ||
		el.VerdictData.Chain != "external-3" || el.Val != nil || el.Comment != "ns/web/tcp/http" {
		t.Errorf("nodeport element: %+v", el)
	}
	el = proxySetElement(proxyElem{proxyElemKey{proxyNoEndpointServices, vip, 0}, proxyElemVal{}})
	if !slices.Equal(el.Key, []byte{10, 96, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0}) || el.Val != nil || el.VerdictData != nil {
		t.Errorf("set element: %+v", el)
	}
}

func TestProxyLongIDsMakeShortComments(t *testing.T) {
	cfg := proxyTestConfig()
	s := proxySvc(strings.Repeat("n", 253), "10.96.0.1", proxyEP("10.244.1.2", 80))
	s.Namespace = strings.Repeat("s", 253)
	ports, refused := cfg.checkService(&s)
	if len(refused) > 0 {
		t.Fatal(refused)
	}
	for _, e := range ports[0].render().elems {
		if len(e.val.comment) > maxProxyComment {
			t.Errorf("comment of %d bytes", len(e.val.comment))
		}
	}
}

// FuzzProxyIndex feeds the index Services decoded from arbitrary bytes, twice over: it
// must never panic, and must agree with the from-scratch rules.
func FuzzProxyIndex(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := proxyTestConfig()
		x := newProxyIndex(&cfg)
		for half := range 2 {
			services := decodeProxyFuzzServices(data[half*len(data)/2:])
			if _, _, err := x.update(services); err != nil {
				continue
			}
			want := acceptProxyFromScratch(&cfg, services)
			if len(x.accepted) != len(want) {
				t.Fatalf("programs %d ports, want %d", len(x.accepted), len(want))
			}
			for id, p := range x.accepted {
				if w := want[id]; w == nil || !w.equal(p) {
					t.Fatalf("%s: %+v, want %+v", id, p, w)
				}
			}
		}
	})
}

// decodeProxyFuzzServices makes Services out of bytes, a few bytes per field, from small
// alphabets so that collisions are common.
func decodeProxyFuzzServices(data []byte) []Service {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	var services []Service
	for len(data) > 0 && len(services) < 16 {
		s := Service{
			Namespace: string(rune('a' + next()%3)),
			Name:      []string{"x", "y", "", "a/b"}[next()%4],
			VIP:       netip.AddrFrom4([4]byte{10, next() % 3 * 100, 0, next() % 3}),
		}
		for range next() % 3 {
			sp := ServicePort{
				Name:     string(rune('p' + next()%3)),
				Protocol: []Protocol{ProtocolTCP, ProtocolUDP, ""}[next()%3],
				Port:     uint16(next() % 3),
				NodePort: uint16(next() % 3),
			}
			for range next() % 4 {
				sp.Endpoints = append(sp.Endpoints, Endpoint{netip.AddrFrom4([4]byte{10, 244, next() % 2, next() % 3}), uint16(next() % 2)})
			}
			s.Ports = append(s.Ports, sp)
		}
		services = append(services, s)
	}
	return services
}
