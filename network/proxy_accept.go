package network

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// proxyPort is one Service port that passed its own checks, normalised: what the kernel
// holds for it is a function of this value (and the ProxyConfig) alone.
type proxyPort struct {
	// id is namespace/name/protocol/port-name: unique among the ports programmed.
	id        string
	vip       netip.Addr
	proto     Protocol
	port      uint16
	nodePort  uint16
	endpoints []Endpoint // sorted, distinct

	entry *proxyEntry // the Service it belongs to
	lost  string      // why it is not programmed, when it is not ("" when it is)
}

// equal reports whether p and o program the same thing.
func (p *proxyPort) equal(o *proxyPort) bool {
	return p.id == o.id && p.vip == o.vip && p.proto == o.proto && p.port == o.port &&
		p.nodePort == o.nodePort && slices.Equal(p.endpoints, o.endpoints)
}

// proxyVIPKey is what two Service ports must not share: a VIP (unset for a NodePort),
// protocol and port.
type proxyVIPKey struct {
	vip   netip.Addr
	proto Protocol
	port  uint16
}

func (p *proxyPort) vipKey() proxyVIPKey { return proxyVIPKey{p.vip, p.proto, p.port} }

func (p *proxyPort) nodePortKey() proxyVIPKey { return proxyVIPKey{proto: p.proto, port: p.nodePort} }

// keys are the keys p claims.
func (p *proxyPort) keys() []proxyVIPKey {
	if p.nodePort == 0 {
		return []proxyVIPKey{p.vipKey()}
	}
	return []proxyVIPKey{p.vipKey(), p.nodePortKey()}
}

// proxyServiceName is a Service's namespace and name.
type proxyServiceName struct{ namespace, name string }

// proxyEntry is one Service as the proxy was last given it.
type proxyEntry struct {
	given   Service      // a deep copy, to tell whether it changed
	ports   []*proxyPort // its ports that passed their own checks
	refused []string     // what its own checks refused
	seen    uint64       // the Sync that last listed it
	listed  int          // how many times that Sync listed it
	dup     bool         // refused for being listed more than once
}

// troubled reports whether the entry has refusals to report.
func (e *proxyEntry) troubled() bool {
	if len(e.refused) > 0 || e.dup {
		return true
	}
	for _, p := range e.ports {
		if p.lost != "" {
			return true
		}
	}
	return false
}

// proxyChange is one Service port whose programmed version changes from old to new;
// either may be nil (the port appears or goes).
type proxyChange struct{ old, new *proxyPort }

// proxyIndex remembers the Services the proxy was last given, so that a Sync costs, beyond
// one comparison per Service, in proportion to what changed: it re-checks only the Services
// that changed and settles only the claims they touch. The rules it applies do not depend
// on the order of the input or on history: each Service and port is checked on its own; a
// Service listed more than once is refused; where ports claim the same VIP:port or
// NodePort, the one with the smallest ID keeps it and the others are refused.
type proxyIndex struct {
	cfg      *ProxyConfig
	gen      uint64
	services map[proxyServiceName]*proxyEntry
	claims   map[proxyVIPKey][]*proxyPort // every port checked, by the keys it claims
	accepted map[string]*proxyPort        // the ports programmed, by ID
	dups     map[*proxyEntry]bool         // the entries refused as listed more than once

	// ports and endpoints count what the Services given hold, for the limits of Update.
	ports, endpoints int

	// Scratch state of one update.
	dirty  map[proxyVIPKey]bool
	before map[string]*proxyPort // accepted[id] before this update, for each id it touched
}

func newProxyIndex(cfg *ProxyConfig) *proxyIndex {
	return &proxyIndex{
		cfg:      cfg,
		services: map[proxyServiceName]*proxyEntry{},
		claims:   map[proxyVIPKey][]*proxyPort{},
		accepted: map[string]*proxyPort{},
		dups:     map[*proxyEntry]bool{},
	}
}

// update takes in the whole set of Services and returns the ports whose programming
// changes, and every refusal (wrapping ErrServiceRefused). A call over a limit is an error
// wrapping ErrProxyLimit, and changes nothing.
func (x *proxyIndex) update(services []Service) ([]proxyChange, []error, error) {
	if err := checkProxyLimits(services); err != nil {
		return nil, nil, err
	}
	x.gen++
	x.dirty, x.before = map[proxyVIPKey]bool{}, map[string]*proxyPort{}
	listed := x.take(services)
	if len(listed) < len(x.services) { // some were not listed: they are gone
		for name, e := range x.services {
			if e.seen != x.gen {
				x.drop(name, e)
			}
		}
	}
	return x.settle(listed)
}

// updateSome is update for a caller that says what changed: the Services of changed are
// taken as update would take them, those named in removed are gone, and every other
// Service stays as it is, at no cost. The limits apply to the Services as they are after.
func (x *proxyIndex) updateSome(changed []Service, removed []ServiceKey) ([]proxyChange, []error, error) {
	if err := checkProxyLimits(changed); err != nil {
		return nil, nil, err
	}
	services, ports, endpoints := len(x.services), x.ports, x.endpoints
	for i := range changed {
		if e, ok := x.services[proxyServiceName{changed[i].Namespace, changed[i].Name}]; ok {
			services--
			ports, endpoints = ports-len(e.given.Ports), endpoints-countEndpoints(&e.given)
		}
		services++
		ports, endpoints = ports+len(changed[i].Ports), endpoints+countEndpoints(&changed[i])
	}
	for _, k := range removed {
		if e, ok := x.services[proxyServiceName{k.Namespace, k.Name}]; ok {
			services--
			ports, endpoints = ports-len(e.given.Ports), endpoints-countEndpoints(&e.given)
		}
	}
	if services > MaxProxyServices || ports > MaxProxyServicePorts || endpoints > MaxProxyEndpoints {
		return nil, nil, fmt.Errorf("%w: %d services, %d service ports, %d endpoints after the update", ErrProxyLimit, services, ports, endpoints)
	}
	x.gen++
	x.dirty, x.before = map[proxyVIPKey]bool{}, map[string]*proxyPort{}
	listed := x.take(changed)
	for _, k := range removed {
		name := proxyServiceName{k.Namespace, k.Name}
		if e, ok := x.services[name]; ok && e.seen != x.gen {
			x.drop(name, e)
		}
	}
	return x.settle(listed)
}

// take takes in the Services of one update and returns their entries.
func (x *proxyIndex) take(services []Service) []*proxyEntry {
	listed := make([]*proxyEntry, 0, len(services))
	for i := range services {
		s := &services[i]
		name := proxyServiceName{s.Namespace, s.Name}
		e, known := x.services[name]
		if known && e.seen == x.gen { // listed again in this Sync
			e.listed++
			continue
		}
		if !known {
			e = &proxyEntry{}
			x.services[name] = e
		}
		e.seen, e.listed = x.gen, 1
		listed = append(listed, e)
		if !known || !equalProxyServices(&e.given, s) {
			x.replace(e, s)
		}
	}
	return listed
}

// drop forgets a Service that is gone.
func (x *proxyIndex) drop(name proxyServiceName, e *proxyEntry) {
	x.release(e)
	x.ports, x.endpoints = x.ports-len(e.given.Ports), x.endpoints-countEndpoints(&e.given)
	delete(x.services, name)
	delete(x.dups, e)
}

// settle decides what the entries an update listed, and the claims it touched, come to.
func (x *proxyIndex) settle(listed []*proxyEntry) ([]proxyChange, []error, error) {
	x.settleDups(listed)
	x.settleClaims()

	changes := make([]proxyChange, 0, len(x.before))
	for _, id := range slices.Sorted(maps.Keys(x.before)) {
		if old, new := x.before[id], x.accepted[id]; old != new {
			changes = append(changes, proxyChange{old, new})
		}
	}
	var refused proxyRefusals
	for _, e := range listed {
		if e.troubled() {
			refused.addEntry(e)
		}
	}
	x.dirty, x.before = nil, nil
	return changes, refused.list(), nil
}

// replace re-checks an entry that is new or changed.
func (x *proxyIndex) replace(e *proxyEntry, s *Service) {
	x.release(e)
	x.ports, x.endpoints = x.ports-len(e.given.Ports)+len(s.Ports), x.endpoints-countEndpoints(&e.given)+countEndpoints(s)
	e.given = cloneProxyService(s)
	e.ports, e.refused = x.cfg.checkService(s)
	for _, p := range e.ports {
		p.entry = e
		for _, k := range p.keys() {
			x.claims[k] = append(x.claims[k], p)
			x.dirty[k] = true
		}
	}
}

// release withdraws an entry's ports: from their claims, and from the ports programmed.
func (x *proxyIndex) release(e *proxyEntry) {
	for _, p := range e.ports {
		for _, k := range p.keys() {
			rest := slices.DeleteFunc(x.claims[k], func(o *proxyPort) bool { return o == p })
			if len(rest) == 0 {
				delete(x.claims, k)
			} else {
				x.claims[k] = rest
			}
			x.dirty[k] = true
		}
		if x.accepted[p.id] == p {
			x.setAccepted(p.id, nil)
		}
	}
	e.ports = nil
}

// settleDups marks the entries listed more than once, and unmarks those listed once again.
func (x *proxyIndex) settleDups(listed []*proxyEntry) {
	flip := func(e *proxyEntry, dup bool) {
		e.dup = dup
		if dup {
			x.dups[e] = true
		} else {
			delete(x.dups, e)
		}
		for _, p := range e.ports {
			for _, k := range p.keys() {
				x.dirty[k] = true
			}
		}
	}
	for e := range x.dups {
		if e.listed == 1 {
			flip(e, false)
		}
	}
	for _, e := range listed {
		if e.listed > 1 && !e.dup {
			flip(e, true)
		}
	}
}

// settleClaims decides, for every port claiming a key touched by this update, whether it
// is programmed.
func (x *proxyIndex) settleClaims() {
	seen := map[*proxyPort]bool{}
	for k := range x.dirty {
		for _, p := range x.claims[k] {
			if seen[p] {
				continue
			}
			seen[p] = true
			p.lost = x.lostReason(p)
			switch {
			case p.lost == "":
				x.setAccepted(p.id, p)
			case x.accepted[p.id] == p:
				x.setAccepted(p.id, nil)
			}
		}
	}
}

// lostReason says why p may not be programmed, or "" if it may.
func (x *proxyIndex) lostReason(p *proxyPort) string {
	if p.entry.dup {
		return fmt.Sprintf("%s: service %s/%s is listed %d times", p.id, p.entry.given.Namespace,
			p.entry.given.Name, p.entry.listed)
	}
	if o := x.owner(p.vipKey()); o != p {
		return fmt.Sprintf("%s: %s %v:%d is already %s's", p.id, p.proto, p.vip, p.port, o.id)
	}
	if p.nodePort != 0 {
		if o := x.owner(p.nodePortKey()); o != p {
			return fmt.Sprintf("%s: %s nodePort %d is already %s's", p.id, p.proto, p.nodePort, o.id)
		}
	}
	return ""
}

// owner is the port that keeps key k: the one with the smallest ID among the claimants
// whose Service is not refused as listed more than once.
func (x *proxyIndex) owner(k proxyVIPKey) *proxyPort {
	var best *proxyPort
	for _, p := range x.claims[k] {
		if !p.entry.dup && (best == nil || p.id < best.id) {
			best = p
		}
	}
	return best
}

// setAccepted sets (or, with nil, removes) the port programmed under id, noting what was
// there before this update.
func (x *proxyIndex) setAccepted(id string, p *proxyPort) {
	if _, noted := x.before[id]; !noted {
		x.before[id] = x.accepted[id]
	}
	if p == nil {
		delete(x.accepted, id)
	} else {
		x.accepted[id] = p
	}
}

// maxProxyRefusals bounds the refusals one Sync reports one by one; the rest are counted.
const maxProxyRefusals = 100

// proxyRefusals collects refusals, each wrapping ErrServiceRefused.
type proxyRefusals struct {
	errs    []error
	dropped int
}

func (r *proxyRefusals) add(msg string) {
	if len(r.errs) == maxProxyRefusals {
		r.dropped++
		return
	}
	r.errs = append(r.errs, fmt.Errorf("%w: %s", ErrServiceRefused, msg))
}

func (r *proxyRefusals) addEntry(e *proxyEntry) {
	for _, msg := range e.refused {
		r.add(msg)
	}
	for _, p := range e.ports {
		if p.lost != "" {
			r.add(p.lost)
		}
	}
}

func (r *proxyRefusals) list() []error {
	if r.dropped > 0 {
		return append(r.errs, fmt.Errorf("%w: %d more refusals not listed", ErrServiceRefused, r.dropped))
	}
	return r.errs
}

// checkProxyLimits refuses a call that asks for more than the MaxProxy limits allow.
// countEndpoints counts the endpoints of a Service's ports.
func countEndpoints(s *Service) int {
	n := 0
	for i := range s.Ports {
		n += len(s.Ports[i].Endpoints)
	}
	return n
}

func checkProxyLimits(services []Service) error {
	if len(services) > MaxProxyServices {
		return fmt.Errorf("%w: %d services, at most %d", ErrProxyLimit, len(services), MaxProxyServices)
	}
	var ports, endpoints int
	for i := range services {
		ports += len(services[i].Ports)
		for j := range services[i].Ports {
			endpoints += len(services[i].Ports[j].Endpoints)
		}
		// Checked as we go so that the sums cannot grow past int on hostile input.
		if ports > MaxProxyServicePorts {
			return fmt.Errorf("%w: more than %d service ports", ErrProxyLimit, MaxProxyServicePorts)
		}
		if endpoints > MaxProxyEndpoints {
			return fmt.Errorf("%w: more than %d endpoints", ErrProxyLimit, MaxProxyEndpoints)
		}
	}
	return nil
}

// checkService checks a Service on its own and returns its ports that pass, normalised,
// and what it refused.
func (c *ProxyConfig) checkService(s *Service) ([]*proxyPort, []string) {
	var refused []string
	refuse := func(format string, args ...any) { refused = append(refused, fmt.Sprintf(format, args...)) }
	if err := checkProxyName(s.Namespace, false); err != nil {
		refuse("service %q/%q: namespace %v", s.Namespace, s.Name, err)
		return nil, refused
	}
	if err := checkProxyName(s.Name, false); err != nil {
		refuse("service %q/%q: name %v", s.Namespace, s.Name, err)
		return nil, refused
	}
	vip := s.VIP.Unmap()
	switch {
	case !usableProxyAddr(vip):
		refuse("service %s/%s: virtual IP %v: want a unicast IPv4 address", s.Namespace, s.Name, s.VIP)
		return nil, refused
	case c.ClusterCIDR.Contains(vip):
		refuse("service %s/%s: virtual IP %v is inside the cluster CIDR %v", s.Namespace, s.Name, vip, c.ClusterCIDR)
		return nil, refused
	case len(s.Ports) > MaxProxyPortsPerService:
		refuse("service %s/%s: %d ports, at most %d", s.Namespace, s.Name, len(s.Ports), MaxProxyPortsPerService)
		return nil, refused
	}
	ports := make([]*proxyPort, 0, len(s.Ports))
	for j := range s.Ports {
		if p := checkServicePort(s, j, refuse); p != nil {
			ports = append(ports, p)
		}
	}
	return ports, refused
}

// checkServicePort checks port j of a Service whose own fields passed, and returns it
// normalised, or nil.
func checkServicePort(s *Service, j int, refuse func(string, ...any)) *proxyPort {
	sp := &s.Ports[j]
	if err := checkProxyName(sp.Name, true); err != nil {
		refuse("service %s/%s port %q: name %v", s.Namespace, s.Name, sp.Name, err)
		return nil
	}
	for k := range j { // a Service has few ports
		if s.Ports[k].Name == sp.Name {
			refuse("service %s/%s port %q: name used twice", s.Namespace, s.Name, sp.Name)
			return nil
		}
	}
	var proto string
	switch sp.Protocol {
	case ProtocolTCP:
		proto = "tcp"
	case ProtocolUDP:
		proto = "udp"
	default:
		refuse("service %s/%s port %q: protocol %q: want %q or %q", s.Namespace, s.Name, sp.Name,
			sp.Protocol, ProtocolTCP, ProtocolUDP)
		return nil
	}
	switch {
	case sp.Port == 0:
		refuse("service %s/%s port %q: port 0: want 1 to 65535", s.Namespace, s.Name, sp.Name)
		return nil
	case len(sp.Endpoints) > MaxProxyEndpointsPerPort:
		refuse("service %s/%s port %q: %d endpoints, at most %d", s.Namespace, s.Name, sp.Name,
			len(sp.Endpoints), MaxProxyEndpointsPerPort)
		return nil
	}
	p := &proxyPort{
		id:       s.Namespace + "/" + s.Name + "/" + proto + "/" + sp.Name,
		vip:      s.VIP.Unmap(),
		proto:    sp.Protocol,
		port:     sp.Port,
		nodePort: sp.NodePort,
	}
	p.endpoints = make([]Endpoint, 0, len(sp.Endpoints))
	for _, e := range sp.Endpoints {
		e.Addr = e.Addr.Unmap()
		if !usableProxyAddr(e.Addr) || e.Port == 0 {
			refuse("%s: endpoint %v: want a unicast IPv4 address and a port from 1 to 65535", p.id, e)
			continue
		}
		p.endpoints = append(p.endpoints, e)
	}
	slices.SortFunc(p.endpoints, func(a, b Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	p.endpoints = slices.Compact(p.endpoints)
	return p
}

// checkProxyName checks a namespace, Service or (when mayBeEmpty) port name: the
// characters of Kubernetes names and a few more, so that IDs joined with '/' are
// unambiguous and print as they are.
func checkProxyName(name string, mayBeEmpty bool) error {
	switch {
	case name == "" && !mayBeEmpty:
		return fmt.Errorf("is empty")
	case len(name) > maxProxyNameLen:
		return fmt.Errorf("is %d bytes, at most %d", len(name), maxProxyNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '.', b == '_', b == '-':
		default:
			return fmt.Errorf("%q: want letters, digits, '.', '_' or '-'", name)
		}
	}
	return nil
}

// usableProxyAddr reports whether a is an IPv4 address traffic can be sent to or through:
// not unspecified, loopback, multicast or the limited broadcast address.
func usableProxyAddr(a netip.Addr) bool {
	return a.Is4() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// equalProxyServices reports whether a and b are given the same, field by field and in order.
func equalProxyServices(a, b *Service) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || a.VIP != b.VIP || len(a.Ports) != len(b.Ports) {
		return false
	}
	for i := range a.Ports {
		pa, pb := &a.Ports[i], &b.Ports[i]
		if pa.Name != pb.Name || pa.Protocol != pb.Protocol || pa.Port != pb.Port ||
			pa.NodePort != pb.NodePort || !slices.Equal(pa.Endpoints, pb.Endpoints) {
			return false
		}
	}
	return true
}

// cloneProxyService copies s with its ports and endpoints, so that the caller may reuse them.
func cloneProxyService(s *Service) Service {
	c := *s
	c.Ports = slices.Clone(s.Ports)
	for i := range c.Ports {
		c.Ports[i].Endpoints = slices.Clone(s.Ports[i].Endpoints)
	}
	return c
}
