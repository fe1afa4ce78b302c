package agent

import (
	"net/netip"
	"slices"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/network"
)

// serviceCache keeps what the desired Services come to — DNS records and the proxy's
// Services — between Readys, so that an event costs the Services it touches, not a pass
// over every endpoint of the cluster: a workload's endpoints are worked out again only
// when its instances changed (here, or in a new list from gossip), and a Service only when
// the endpoints of a workload it selects did.
type serviceCache struct {
	// local is this node's endpoints by workload, sorted by ID, made anew by each Ready.
	local map[workloadKey][]endpoint
	// workloads are each workload's endpoints as endpoints last worked them out.
	workloads map[workloadKey]*workloadEndpoints
	// built is, for each of services (the revision's), what it came to and from what.
	services []service
	built    []builtService
	// dns and proxy are the lists last made; a new list when something in it changed.
	dns   []dns.Service
	proxy []network.Service
	// nodes and subnet are the members and this node's subnet the caches hold for: they
	// decide which addresses a node may publish (see speaksFor).
	nodes  []gossip.NodeInfo
	subnet netip.Prefix
}

// workloadEndpoints is one workload's endpoints and what they were made from.
type workloadEndpoints struct {
	remote []gossip.InstanceInfo
	local  []endpoint
	eps    []endpoint
}

// builtService is what one Service came to, from the endpoint lists of the workloads it
// selects (from, by matched workload).
type builtService struct {
	from     [][]endpoint
	dns      dns.Service
	proxy    network.Service
	hasProxy bool
	valid    bool
}

// refreshServices brings the Services' records up to date and reports whether the DNS
// records changed, and which of the proxy's Services did.
func (c *core) refreshServices() (dnsChanged bool, proxyChanged []network.ServiceKey) {
	sv := &c.svc
	if !sameNodes(sv.nodes, c.view.Nodes) || sv.subnet != c.net.claim.Subnet || sv.workloads == nil {
		sv.workloads, sv.nodes, sv.subnet = map[workloadKey]*workloadEndpoints{}, c.view.Nodes, c.net.claim.Subnet
	}
	revision := !sameList(sv.services, c.services) || len(sv.built) != len(c.services)
	if revision {
		sv.services, sv.built = c.services, make([]builtService, len(c.services))
	}
	before := sv.proxy
	sv.local = map[workloadKey][]endpoint{}
	for _, id := range c.instanceIDs() {
		in := c.instances[id]
		if in.stopping || !in.created {
			continue
		}
		if addr := c.addrOf(in); addr.IsValid() {
			k := workloadKey{in.namespace, in.workload}
			sv.local[k] = append(sv.local[k], endpoint{id: in.id, addr: addr, ready: in.phase(c.now) == PhaseReady})
		}
	}
	changed := false
	for i, s := range c.services {
		b := &sv.built[i]
		if b.valid && c.endpointsSame(s, b.from) {
			continue
		}
		eps := make([][]endpoint, len(s.matched))
		for j, w := range s.matched {
			eps[j] = c.endpoints(w)
		}
		ns, hasProxy := c.proxyService(s, eps)
		if !b.valid || hasProxy != b.hasProxy || hasProxy && !proxyServiceEqual(ns, b.proxy) {
			if hasProxy || b.hasProxy {
				proxyChanged = append(proxyChanged, network.ServiceKey{Namespace: s.svc.Metadata.Namespace, Name: s.svc.Metadata.Name})
			}
		}
		*b = builtService{from: eps, dns: c.dnsService(s, eps), proxy: ns, hasProxy: hasProxy, valid: true}
		changed = true
	}
	if changed || sv.dns == nil {
		sv.dns, sv.proxy = make([]dns.Service, 0, len(sv.built)), []network.Service{}
		for _, b := range sv.built {
			sv.dns = append(sv.dns, b.dns)
			if b.hasProxy {
				sv.proxy = append(sv.proxy, b.proxy)
			}
		}
		dnsChanged = true
	}
	if revision { // Services may have gone: compare the whole lists
		proxyChanged = serviceChanges(before, sv.proxy)
	}
	return dnsChanged, proxyChanged
}

// endpointsSame reports whether the workloads s selects still have the endpoint lists from.
func (c *core) endpointsSame(s service, from [][]endpoint) bool {
	if len(from) != len(s.matched) {
		return false
	}
	for j, w := range s.matched {
		if !sameList(from[j], c.endpoints(w)) {
			return false
		}
	}
	return true
}

// proxyServiceEqual reports whether two of the proxy's Services are the same.
func proxyServiceEqual(a, b network.Service) bool {
	return a.Namespace == b.Namespace && a.Name == b.Name && a.VIP == b.VIP &&
		slices.EqualFunc(a.Ports, b.Ports, func(x, y network.ServicePort) bool {
			return x.Name == y.Name && x.Protocol == y.Protocol && x.Port == y.Port && x.NodePort == y.NodePort &&
				slices.Equal(x.Endpoints, y.Endpoints)
		})
}
