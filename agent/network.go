package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/network"
	"github.com/shoalhq/shoal/spec"
)

// Network is the node's pod network as the shell drives it: the bridge and addresses of
// its instances, the Service proxy and the routes to the other nodes' subnets. Its methods
// may take a while (they program the kernel); the shell calls them from one goroutine of
// its own, with the newest state only.
type Network interface {
	// SetSubnet makes claim this node's pod subnet: recorded so that a restarted agent
	// claims it again, and given to the bridge and the routes.
	SetSubnet(claim network.SubnetClaim) error
	// SyncServices programs the Services' virtual IPs and node ports: services is all of them.
	SyncServices(services []network.Service) error
	// UpdateServices is SyncServices for what changed since the last call: changed are the
	// Services that are new or differ, removed those that are gone.
	UpdateServices(changed []network.Service, removed []network.ServiceKey) error
	// SyncPeers routes the other nodes' subnets.
	SyncPeers(peers []network.Peer) error
}

// WithNetwork gives the agent a pod network: instances that do not ask for the node's
// network get their own address from this node's subnet, Services get virtual IPs, and
// the shell programs them through n. The configuration's Network says the ranges.
func WithNetwork(n Network) Option { return func(a *Agent) { a.network = n } }

// netState is the core's part of the pod network.
type netState struct {
	// podRange is the cluster's pod range; zero without a pod network.
	podRange network.PodRange
	// claim is this node's subnet claim, its Subnet invalid until one is chosen;
	// claimErr why none could be (the range is full).
	claim    network.SubnetClaim
	claimErr string
	// claimGiven is true once claim went to the shell in this run (rd.subnet): a claim
	// kept from an earlier run must go too, since the shell's pod network starts empty.
	claimGiven bool
	// lastAddr is the last address given to an instance: the next starts after it, so that
	// an address just freed is not reused at once by another instance.
	lastAddr netip.Addr
	// vips and nodePorts are the desired revision's, assigned when it is accepted;
	// problems say what could not be honoured.
	vips      map[network.ServiceKey]netip.Addr
	nodePorts map[network.NodePortKey]uint16
	problems  []string
	// What was last handed to the shell, to hand over only changes.
	proxy     []network.Service
	proxySet  bool
	peers     []network.Peer
	peersFrom []gossip.NodeInfo // the members peers were computed from
	peersSet  bool
	// owners is, per member, where its instances may be (see speaksFor), computed from
	// the members ownersFrom; nil when out of date.
	owners     map[string]nodeAddrs
	ownersFrom []gossip.NodeInfo
}

// podNetwork reports whether an instance of w gets a network of its own.
func (c *core) podNetwork(w *compiled) bool {
	return c.cfg.Network.On() && !w.d.Spec.Template.Spec.HostNetwork
}

// decideSubnet chooses this node's pod subnet, or keeps it: the one it claimed before
// (across restarts) unless an older claim of another node wins it. A clustered node
// waits until it joined and sees the others' claims, so that its first choice avoids them.
func (c *core) decideSubnet() {
	if !c.cfg.Network.On() || c.clustered && (c.notJoined != "" || len(c.view.Nodes) == 0) {
		return
	}
	others := c.subnetClaims()
	p, err := c.net.podRange.ChooseSubnet(c.net.claim, others)
	if err != nil {
		if c.net.claimErr != err.Error() {
			c.log.Error("no pod subnet for this node: its instances cannot start", "err", err)
		}
		c.net.claimErr = err.Error()
		return
	}
	c.net.claimErr = ""
	switch old := c.net.claim.Subnet; {
	case p == old && c.net.claimGiven:
		return
	case p == old: // kept from an earlier run: this run's pod network has yet to get it
		c.log.Info("pod subnet kept", "subnet", p)
	case old.IsValid():
		winner, _ := c.net.podRange.LostClaim(c.net.claim, others)
		c.log.Warn("pod subnet lost to an older claim: instances on it are replaced", "subnet", old, "winner", winner, "new", p)
		c.net.claim = network.SubnetClaim{Node: c.cfg.NodeName, Subnet: p, Since: c.now.UnixMilli()}
	default:
		c.log.Info("pod subnet claimed", "subnet", p)
		c.net.claim = network.SubnetClaim{Node: c.cfg.NodeName, Subnet: p, Since: c.now.UnixMilli()}
	}
	c.net.claimGiven = true
	c.index.nodes = nil // status shows this node's subnet
	c.net.owners = nil  // who holds which subnet may have changed
	claim := c.net.claim
	c.rd.subnet = &claim
	c.planDue = true // what waited for a subnet may start
}

// subnetClaims are the pod subnet claims of the other members gossip lists, alive or
// not: a member declared dead may still run instances on its subnet until it is gone.
func (c *core) subnetClaims() []network.SubnetClaim {
	var out []network.SubnetClaim
	for _, n := range c.view.Nodes {
		if n.Name == c.cfg.NodeName || n.PodSubnet == "" {
			continue
		}
		if p, err := netip.ParsePrefix(n.PodSubnet); err == nil {
			out = append(out, network.SubnetClaim{Node: n.Name, Subnet: p, Since: n.PodSubnetSince})
		}
	}
	return out
}

// instanceAddr gives in an address of this node's subnet unless it has one there: the
// next free after the last given. It reports false when the node has no subnet yet or
// the subnet is full, with the reason in the record.
func (c *core) instanceAddr(in *instance) bool {
	subnet := c.net.claim.Subnet
	switch {
	case !subnet.IsValid():
		in.message = "waiting for this node's pod subnet"
		if c.net.claimErr != "" {
			in.message += ": " + c.net.claimErr
		}
		return false
	case in.addr.IsValid() && subnet.Contains(in.addr):
		return true
	}
	used := map[netip.Addr]bool{}
	for _, other := range c.instances {
		used[other.addr] = true
	}
	first := subnet.Addr().Next().Next() // the network address and the bridge's gateway are not given
	size := 1 << (32 - subnet.Bits())
	a := c.net.lastAddr
	for range size {
		if a = a.Next(); !subnet.Contains(a) || !a.Next().IsValid() || !subnet.Contains(a.Next()) {
			a = first // wrapped, or the broadcast address
		}
		if !used[a] && a.Compare(first) >= 0 {
			in.addr, c.net.lastAddr = a, a
			return true
		}
	}
	in.message = fmt.Sprintf("pod subnet %s is full", subnet)
	return false
}

// outsideSubnet reports whether in has an address of the pod network that this node's
// subnet no longer holds (the node lost its claim): it must be replaced.
func (c *core) outsideSubnet(in *instance) bool {
	return in.addr.IsValid() && in.podNetwork && c.net.claim.Subnet.IsValid() && !c.net.claim.Subnet.Contains(in.addr)
}

// assignServices gives the revision's Services their virtual IPs and node ports, the same
// on every node.
func (c *core) assignServices(set *spec.Set) {
	c.net.vips, c.net.nodePorts, c.net.problems = nil, nil, nil
	if !c.cfg.Network.On() {
		return
	}
	var vipReqs []network.VIPRequest
	var portReqs []network.NodePortRequest
	for _, svc := range set.Services {
		if svc.Spec.ClusterIP == spec.ClusterIPNone || svc.IsExternalName() {
			continue
		}
		key := network.ServiceKey{Namespace: svc.Metadata.Namespace, Name: svc.Metadata.Name}
		var requested netip.Addr
		if svc.Spec.ClusterIP != "" {
			requested, _ = netip.ParseAddr(svc.Spec.ClusterIP) // validated when loaded
		}
		vipReqs = append(vipReqs, network.VIPRequest{Key: key, Requested: requested})
		if svc.Spec.Type != "NodePort" && svc.Spec.Type != "LoadBalancer" {
			continue
		}
		for _, p := range svc.Spec.Ports {
			portReqs = append(portReqs, network.NodePortRequest{Key: key, Port: portKey(p), Protocol: p.Protocol, Requested: uint16(p.NodePort)})
		}
	}
	vips, vipProblems, err := network.AssignVIPs(c.cfg.Network.ServiceCIDR, vipReqs)
	if err != nil {
		c.net.problems = append(c.net.problems, err.Error())
	}
	for _, p := range vipProblems {
		c.net.problems = append(c.net.problems, p.String())
	}
	ports, portProblems, err := network.AssignNodePorts(c.cfg.Network.NodePortMin, c.cfg.Network.NodePortMax, portReqs)
	if err != nil {
		c.net.problems = append(c.net.problems, err.Error())
	}
	for _, p := range portProblems {
		c.net.problems = append(c.net.problems, p.String())
	}
	for _, p := range c.net.problems {
		c.log.Warn("service address not as asked", "problem", p)
	}
	c.net.vips, c.net.nodePorts = vips, ports
}

// portKey names a Service port for node port assignment: its name, or its number.
func portKey(p spec.ServicePort) string { return cmp.Or(p.Name, strconv.Itoa(int(p.Port))) }

// proxyService is what the Service proxy programs of one desired Service, from the
// endpoints of the workloads it selects (eps, by matched workload): each port to the ready
// instances' address and target port, SCTP ports left out (see network.Proxied). ok is
// false for a Service without a virtual IP.
func (c *core) proxyService(s service, eps [][]endpoint) (ns network.Service, ok bool) {
	key := network.ServiceKey{Namespace: s.svc.Metadata.Namespace, Name: s.svc.Metadata.Name}
	vip, ok := c.net.vips[key]
	if !ok {
		return network.Service{}, false
	}
	ns = network.Service{Namespace: key.Namespace, Name: key.Name, VIP: vip}
	for _, p := range s.svc.Spec.Ports {
		if !network.Proxied(network.Protocol(cmp.Or(p.Protocol, spec.ProtocolTCP))) {
			continue // SCTP: validation warned that the proxy does not carry it
		}
		sp := network.ServicePort{
			Name: p.Name, Protocol: network.Protocol(cmp.Or(p.Protocol, spec.ProtocolTCP)), Port: uint16(p.Port),
			NodePort: c.net.nodePorts[network.NodePortKey{Service: key, Port: portKey(p)}],
		}
		for j, w := range s.matched {
			target := targetPortOf(p, w)
			if target == 0 {
				continue // a named targetPort this workload's containers do not have
			}
			for _, ep := range eps[j] {
				if ep.ready {
					sp.Endpoints = append(sp.Endpoints, network.Endpoint{Addr: ep.addr, Port: uint16(target)})
				}
			}
		}
		slices.SortFunc(sp.Endpoints, func(a, b network.Endpoint) int {
			return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
		})
		sp.Endpoints = slices.Compact(sp.Endpoints)
		ns.Ports = append(ns.Ports, sp)
	}
	return ns, true
}

// targetPortOf is the number a Service port reaches on the instances of w: its
// targetPort, resolved by name against w's container ports (0 when w has no such name).
func targetPortOf(p spec.ServicePort, w *compiled) int32 {
	switch {
	case p.TargetPort == nil:
		return p.Port
	case !p.TargetPort.IsString:
		return p.TargetPort.Int
	}
	return w.namedPort(p.TargetPort.Str)
}

// endpoint is one instance of a workload, anywhere in the cluster, as Services see it.
type endpoint struct {
	id    string
	addr  netip.Addr
	ready bool
}

// endpoints are the running instances of w on every node, this node's from its records
// (fresher than gossip), the others' from gossip. The list is kept (see serviceCache)
// while neither changed, and never modified: a change makes a new one.
func (c *core) endpoints(w *compiled) []endpoint {
	local, remote := c.svc.local[w.key], c.remoteInstances(w.key)
	if e := c.svc.workloads[w.key]; e != nil && sameList(e.remote, remote) && slices.Equal(e.local, local) {
		return e.eps
	}
	out := slices.Clone(local)
	for _, in := range remote {
		if in.Node == c.cfg.NodeName || !in.Running {
			continue
		}
		if addr, err := netip.ParseAddr(in.Addr); err == nil && c.speaksFor(in.Node, addr) {
			out = append(out, endpoint{id: in.ID, addr: addr, ready: in.Ready})
		}
	}
	if out == nil {
		out = []endpoint{} // a list of its own, so that identity tells it from the last
	}
	c.svc.workloads[w.key] = &workloadEndpoints{remote: remote, local: local, eps: out}
	return out
}

// sameList reports whether a and b are the same list (not merely equal).
func sameList[T any](a, b []T) bool { return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) }

// speaksFor reports whether node may publish an instance at addr: an address of the pod
// subnet it holds, or its own address (an instance on its node's network). A node's
// gossip cannot send other nodes' Service traffic to an address it does not own.
func (c *core) speaksFor(node string, addr netip.Addr) bool {
	if !sameNodes(c.net.ownersFrom, c.view.Nodes) || c.net.owners == nil {
		c.net.owners = map[string]nodeAddrs{}
		claims := c.subnetClaims()
		if c.net.claim.Subnet.IsValid() {
			claims = append(claims, c.net.claim)
		}
		held := map[string]netip.Prefix{}
		if c.cfg.Network.On() {
			for subnet, owner := range c.net.podRange.SubnetOwners(claims) {
				held[owner] = subnet
			}
		}
		for _, n := range c.view.Nodes {
			a, _ := netip.ParseAddr(n.Addr)
			c.net.owners[n.Name] = nodeAddrs{addr: a, subnet: held[n.Name]}
		}
		c.net.ownersFrom = c.view.Nodes
	}
	own, ok := c.net.owners[node]
	return ok && (addr == own.addr || own.subnet.IsValid() && own.subnet.Contains(addr))
}

// nodeAddrs is what a member may publish its instances at.
type nodeAddrs struct {
	addr   netip.Addr
	subnet netip.Prefix
}

// addrOf is where an instance of this node is reached: its own address on the pod
// network, or the node's.
func (c *core) addrOf(in *instance) netip.Addr {
	if in.addr.IsValid() {
		return in.addr
	}
	addr, _ := netip.ParseAddr(c.cfg.NodeAddr)
	return addr
}

// routePeers are the other nodes whose pod subnets this node routes to: alive, with a
// claim that the conflict rule lets them keep.
func (c *core) routePeers() []network.Peer {
	claims := c.subnetClaims()
	if c.net.claim.Subnet.IsValid() {
		claims = append(claims, c.net.claim)
	}
	owners := c.net.podRange.SubnetOwners(claims)
	out := []network.Peer{}
	for _, cl := range claims {
		if cl.Node == c.cfg.NodeName || owners[cl.Subnet] != cl.Node {
			continue
		}
		i := slices.IndexFunc(c.view.Nodes, func(n gossip.NodeInfo) bool { return n.Name == cl.Node })
		if i < 0 || !c.view.Nodes[i].Alive {
			continue
		}
		if addr, err := netip.ParseAddr(c.view.Nodes[i].Addr); err == nil {
			out = append(out, network.Peer{Node: cl.Node, Addr: addr, Subnet: cl.Subnet})
		}
	}
	slices.SortFunc(out, func(a, b network.Peer) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// networkReady adds to Ready what the shell must program: the Service proxy's state when
// some of its Services changed (changed names them), and the peers' routes when the
// members or claims changed.
func (c *core) networkReady(changed []network.ServiceKey) {
	if !c.cfg.Network.On() {
		return
	}
	if c.desired != nil && (!c.net.proxySet || len(changed) > 0) {
		c.net.proxy, c.net.proxySet = c.svc.proxy, true
		list := c.net.proxy // the shell's own copy of the header: the list itself is never modified
		c.rd.proxy, c.rd.proxyChanged = &list, changed
	}
	if !c.clustered {
		return
	}
	if c.net.peersSet && sameNodes(c.net.peersFrom, c.view.Nodes) && !c.rd.subnetChanged() {
		return
	}
	if p := c.routePeers(); !c.net.peersSet || !reflect.DeepEqual(p, c.net.peers) {
		c.net.peers, c.net.peersSet = p, true
		c.rd.peers = &p
	}
	c.net.peersFrom = c.view.Nodes
}

// serviceChanges names the Services that differ between two lists sorted by namespace
// and name: those in one only, and those whose ports or endpoints changed.
func serviceChanges(old, cur []network.Service) []network.ServiceKey {
	var out []network.ServiceKey
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		var c int
		switch {
		case i == len(old):
			c = 1
		case j == len(cur):
			c = -1
		default:
			c = cmp.Or(cmp.Compare(old[i].Namespace, cur[j].Namespace), cmp.Compare(old[i].Name, cur[j].Name))
		}
		switch {
		case c < 0:
			out = append(out, network.ServiceKey{Namespace: old[i].Namespace, Name: old[i].Name})
			i++
		case c > 0:
			out = append(out, network.ServiceKey{Namespace: cur[j].Namespace, Name: cur[j].Name})
			j++
		default:
			if !reflect.DeepEqual(old[i], cur[j]) {
				out = append(out, network.ServiceKey{Namespace: cur[j].Namespace, Name: cur[j].Name})
			}
			i, j = i+1, j+1
		}
	}
	return out
}

// sameNodes reports whether two member lists are the same immutable list gossip handed out.
func sameNodes(a, b []gossip.NodeInfo) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (rd *ready) subnetChanged() bool { return rd.subnet != nil }

// netWorker programs what the core decided for the pod network, off the loop: the newest
// subnet, Services and peers, one call at a time, a failed call again a second later.
// Older states still waiting are replaced by newer ones: only the last one matters.
type netWorker struct {
	n   Network
	log *slog.Logger
	mu  sync.Mutex
	// The states waiting to be programmed (nil: none). services is the newest whole list;
	// changed names the Services changed since the last programmed, unless whole is set:
	// then (at first, and after a failure) the whole list goes.
	subnet   *network.SubnetClaim
	services *[]network.Service
	changed  map[network.ServiceKey]bool
	whole    bool
	peers    *[]network.Peer
	kick     chan struct{}
}

func newNetWorker(n Network, log *slog.Logger) *netWorker {
	return &netWorker{n: n, log: log, kick: make(chan struct{}, 1), changed: map[network.ServiceKey]bool{}, whole: true}
}

// offer hands over what rd says to program.
func (w *netWorker) offer(rd ready) {
	if rd.subnet == nil && rd.proxy == nil && rd.peers == nil {
		return
	}
	w.mu.Lock()
	if rd.subnet != nil {
		w.subnet = rd.subnet
	}
	if rd.proxy != nil {
		w.services = rd.proxy
		for _, k := range rd.proxyChanged {
			w.changed[k] = true
		}
	}
	if rd.peers != nil {
		w.peers = rd.peers
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run programs until ctx ends.
func (w *netWorker) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry.C:
		}
		if again := w.program(); again > 0 {
			retry.Reset(again)
		}
	}
}

// Retries of the network worker: a failure soon; peers the routes refused later, since a
// refusal can depend on the node's state (its subnet, a link not up yet), unlike a
// Service's, which depends on the Service alone and is not tried again.
const (
	retryFailed       = time.Second
	retryRefusedPeers = 5 * time.Second
)

// program carries out what waits, the subnet first; it returns when to try again what
// did not go through (0: all did).
func (w *netWorker) program() time.Duration {
	w.mu.Lock()
	subnet, services, peers := w.subnet, w.services, w.peers
	changed, whole := w.changed, w.whole
	w.subnet, w.services, w.peers = nil, nil, nil
	w.changed, w.whole = map[network.ServiceKey]bool{}, false
	w.mu.Unlock()
	var again time.Duration
	retryIn := func(d time.Duration, put func()) {
		w.mu.Lock()
		put()
		w.mu.Unlock()
		if again == 0 || d < again {
			again = d
		}
	}
	keep := func(err error, what string, put func()) {
		switch {
		case err == nil:
		case refusedOnly(err) && what == "routes":
			w.log.Warn("some peers not routed; trying again later", "err", err)
			retryIn(retryRefusedPeers, put)
		case refusedOnly(err):
			// The rest is programmed; the same input would be refused again.
			w.log.Warn("part of the pod network not programmed", "what", what, "err", err)
		default:
			w.log.Error("programming the pod network failed; trying again", "what", what, "err", err)
			retryIn(retryFailed, put)
		}
	}
	if subnet != nil {
		keep(w.n.SetSubnet(*subnet), "subnet", func() {
			if w.subnet == nil {
				w.subnet = subnet
			}
		})
	}
	if services != nil {
		var err error
		if whole {
			err = w.n.SyncServices(*services)
		} else {
			err = w.n.UpdateServices(pick(*services, changed))
		}
		keep(err, "services", func() {
			if w.services == nil {
				w.services = services
			}
			w.whole = true // what the proxy holds is not known: send it all
		})
	}
	if peers != nil {
		keep(w.n.SyncPeers(*peers), "routes", func() {
			if w.peers == nil {
				w.peers = peers
			}
		})
	}
	return again
}

// pick splits the Services named in changed into those of services (changed or new) and
// the names of those services no longer has (removed).
func pick(services []network.Service, changed map[network.ServiceKey]bool) ([]network.Service, []network.ServiceKey) {
	var upd []network.Service
	for _, s := range services {
		k := network.ServiceKey{Namespace: s.Namespace, Name: s.Name}
		if changed[k] {
			upd = append(upd, s)
			delete(changed, k)
		}
	}
	removed := slices.Collect(maps.Keys(changed))
	slices.SortFunc(removed, func(a, b network.ServiceKey) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return upd, removed
}

// refusedOnly reports whether err only says that some of the input was refused (a
// Service or a peer that cannot be programmed) while the rest was.
func refusedOnly(err error) bool {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			if !refusedOnly(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, network.ErrServiceRefused) || errors.Is(err, network.ErrPeerRefused)
}
