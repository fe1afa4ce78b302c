package network

import (
	"slices"
	"strconv"
)

// The table follows kube-proxy's nftables mode where it can: the dispatch verdict maps
// service-ips (VIP . protocol . port) and service-nodeports (protocol . nodePort, for a
// local destination: fib daddr type local) in a "services" chain hooked at prerouting and
// output (priority dstnat); marking for masquerade; rejecting Services with no endpoints
// from the input, forward and output hooks; a "masquerading" chain at postrouting.
//
// It differs in one respect, for speed: no chain and no rule is specific to a Service.
// kube-proxy gives each Service port a chain with "numgen random mod N vmap" to one chain
// per endpoint. Every rule or map element that names a chain, or NATs, makes the kernel
// validate the whole table again at commit (and check for loops, scanning every map for
// each chain it reaches), so with that layout a change to one Service's endpoints costs in
// proportion to all of them: measured on kernel 6.18, one such change took ~0.6 ms with
// 500 Services and 13 to 90 ms with 5,000 (kube-proxy's maintainers met the same, e.g.
// kubernetes/kubernetes#139513). Instead, a Service port's endpoints are data:
//
//	service-ips        VIP . protocol . port         : goto spread-N     (N endpoints)
//	service-endpoints  VIP . protocol . port . slot  : endpoint address . port
//	chain spread-N     { dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N map @service-endpoints }
//
// and the same for NodePorts (service-nodeports, nodeport-endpoints, external-N, which
// also marks for masquerade). spread-N is shared by every Service with N endpoints. A
// change of endpoints that keeps their number rewrites only data elements, which needs no
// validation; a change of number also moves the Service's service-ips element to another
// spread chain, which costs one validation of a table that has only a few chains (but
// one verdict per Service port: ~1 ms with 5,000). A chain spread-N is made the first
// time a Service has N endpoints, and kept until the table is rebuilt. Services
// with no endpoints are keys in two plain sets, no-endpoint-services and
// no-endpoint-nodeports, that send new connections to the "reject" chain: a TCP reset or
// an ICMP port unreachable, so clients fail at once instead of hanging.
const (
	proxyServicesChain       = "services"
	proxyEndpointsCheckChain = "endpoints-check"
	proxyRejectChain         = "reject"
	proxyMarkMasqChain       = "mark-for-masquerade"
	proxyMasqueradingChain   = "masquerading"

	proxyServiceIPsMap        = "service-ips"
	proxyServiceNodePortsMap  = "service-nodeports"
	proxyServiceEndpointsMap  = "service-endpoints"
	proxyNodePortEndpointsMap = "nodeport-endpoints"
	proxyNoEndpointServices   = "no-endpoint-services"
	proxyNoEndpointNodePorts  = "no-endpoint-nodeports"
)

// proxySpreadChain and proxyExternalChain name the chains that pick one of n endpoints.
func proxySpreadChain(n int) string   { return "spread-" + strconv.Itoa(n) }
func proxyExternalChain(n int) string { return "external-" + strconv.Itoa(n) }

// maxProxyComment bounds an element's comment (the Service port's ID), which keeps
// messages small; the kernel allows 256 bytes of element user data.
const maxProxyComment = 128

// proxyElem is one element of one of the table's maps or sets.
type proxyElem struct {
	key proxyElemKey
	val proxyElemVal
}

// proxyElemKey is an element's map or set and key: vip.vip is unset in the NodePort maps
// and sets, slot is only used in the endpoints maps.
type proxyElemKey struct {
	set  string
	vip  proxyVIPKey
	slot uint32
}

// proxyElemVal is what an element maps its key to: a chain (verdict maps), an endpoint
// (endpoint maps) or nothing (sets); comment names the Service port.
type proxyElemVal struct {
	to      string
	ep      Endpoint
	comment string
}

// proxyPlan is what the kernel holds for one Service port: elements, and the spread
// size (0: no endpoints) whose chains must exist.
type proxyPlan struct {
	elems []proxyElem
	n     int
}

// render returns what programs port p.
func (p *proxyPort) render() proxyPlan {
	comment := p.id
	if len(comment) > maxProxyComment {
		comment = comment[:maxProxyComment]
	}
	vipKey := proxyVIPKey{p.vip, p.proto, p.port}
	nodeKey := proxyVIPKey{proto: p.proto, port: p.nodePort}
	elem := func(set string, k proxyVIPKey, slot uint32, val proxyElemVal) proxyElem {
		return proxyElem{proxyElemKey{set, k, slot}, val}
	}
	n := len(p.endpoints)
	plan := proxyPlan{n: n}
	if n == 0 {
		plan.elems = append(plan.elems, elem(proxyNoEndpointServices, vipKey, 0, proxyElemVal{comment: comment}))
		if p.nodePort != 0 {
			plan.elems = append(plan.elems, elem(proxyNoEndpointNodePorts, nodeKey, 0, proxyElemVal{comment: comment}))
		}
		return plan
	}
	plan.elems = make([]proxyElem, 0, 2+2*n)
	plan.elems = append(plan.elems, elem(proxyServiceIPsMap, vipKey, 0, proxyElemVal{to: proxySpreadChain(n), comment: comment}))
	for i, e := range p.endpoints {
		plan.elems = append(plan.elems, elem(proxyServiceEndpointsMap, vipKey, uint32(i), proxyElemVal{ep: e}))
	}
	if p.nodePort != 0 {
		plan.elems = append(plan.elems, elem(proxyServiceNodePortsMap, nodeKey, 0, proxyElemVal{to: proxyExternalChain(n), comment: comment}))
		for i, e := range p.endpoints {
			plan.elems = append(plan.elems, elem(proxyNodePortEndpointsMap, nodeKey, uint32(i), proxyElemVal{ep: e}))
		}
	}
	return plan
}

// proxyTxn is one nftables transaction, as data. Applied in this order: (when full) the
// table is replaced by an empty skeleton; the spread chains of sizes are created; del
// elements are removed; add elements are added.
type proxyTxn struct {
	full    bool
	sizes   []int // spread sizes whose chains are created
	del     []proxyElem
	add     []proxyElem
	changed int // Service ports added, changed or removed
}

func (t *proxyTxn) empty() bool {
	return !t.full && len(t.sizes)+len(t.del)+len(t.add) == 0
}

// rebuildProxyTxn replaces the whole table with one that programs want.
func rebuildProxyTxn(want map[string]*proxyPort) *proxyTxn {
	t := &proxyTxn{full: true, changed: len(want)}
	sizes := map[int]bool{}
	for _, id := range sortedProxyIDs(want) {
		plan := want[id].render()
		t.add = append(t.add, plan.elems...)
		if plan.n > 0 && !sizes[plan.n] {
			sizes[plan.n] = true
			t.sizes = append(t.sizes, plan.n)
		}
	}
	slices.Sort(t.sizes)
	return t
}

// diffProxyChanges returns the transaction that makes the kernel follow changes, given
// the spread sizes whose chains exist.
func diffProxyChanges(changes []proxyChange, sizes map[int]bool) *proxyTxn {
	t := &proxyTxn{changed: len(changes)}
	var oldElems, newElems []proxyElem
	newSizes := map[int]bool{}
	for _, c := range changes {
		if c.old != nil {
			oldElems = append(oldElems, c.old.render().elems...)
		}
		if c.new != nil {
			plan := c.new.render()
			newElems = append(newElems, plan.elems...)
			if plan.n > 0 && !sizes[plan.n] && !newSizes[plan.n] {
				newSizes[plan.n] = true
				t.sizes = append(t.sizes, plan.n)
			}
		}
	}
	slices.Sort(t.sizes)
	// Elements are compared across all changes at once: a key that moves from one Service
	// port to another in this Sync is updated, not deleted and added twice.
	wanted := make(map[proxyElemKey]proxyElemVal, len(newElems))
	for _, e := range newElems {
		wanted[e.key] = e.val
	}
	kept := make(map[proxyElemKey]bool, len(oldElems))
	for _, e := range oldElems {
		if val, ok := wanted[e.key]; ok && val == e.val {
			kept[e.key] = true
		} else {
			t.del = append(t.del, e)
		}
	}
	for _, e := range newElems {
		if !kept[e.key] {
			t.add = append(t.add, e)
		}
	}
	return t
}

// sortedProxyIDs returns the keys of ports in order.
func sortedProxyIDs(ports map[string]*proxyPort) []string {
	ids := make([]string, 0, len(ports))
	for id := range ports {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
