package agent

import (
	"cmp"
	"maps"
	"slices"
	"sort"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/planner"
)

// viewIndex indexes the gossip view by workload, so that an event costs what it changes,
// not a pass over every instance of the cluster: status, DNS and pacing read one
// workload's instances, and what is derived from them is kept until they change.
type viewIndex struct {
	// byWorkload is each workload's instances in the view, every node's, sorted by ID
	// and node. A list is never modified: a change replaces it.
	byWorkload map[workloadKey][]gossip.InstanceInfo
	// status is each workload's instances as status shows them, built on demand and
	// dropped when they change.
	status map[workloadKey]*remoteStatus
	// nodes is Status.Nodes, built on demand; nil when out of date.
	nodes []NodeStatus
	// planned is the view in the planner's terms without this node, built on demand;
	// nil when out of date. Plans of new revisions on an unchanged view reuse it.
	planned *planner.View
	// merged is planned's instances with this node's (mergedLocal), as planView last
	// merged them from mergedFrom; never modified.
	merged      []planner.Instance
	mergedFrom  *planner.View
	mergedLocal []planner.Instance
	// planNodes is the members, this node included, indexed for the planner: built on
	// demand, nil once they change in what placement reads.
	planNodes *planner.Nodes
	// workloads are the workloads status lists, sorted, built on demand; nil when out of
	// date (a revision, a plan, a view that changed in more than readiness).
	workloads []workloadKey
	// statusBase is, for each of workloads (statusBaseOf is its first element), its
	// status without this node's instances; statusStale the workloads whose entry must
	// be built again (see core.statusBase).
	statusBase   []WorkloadStatus
	statusBaseOf *workloadKey
	statusStale  []workloadKey
	// statusMerged is, per workload this node runs, the last merge of its instances
	// with the others' (see core.mergeStatus).
	statusMerged map[workloadKey]mergedStatus
}

// remoteStatus is what status shows of the instances other nodes run of one workload.
type remoteStatus struct {
	instances []InstanceStatus // sorted by ID and node, never modified
	ready     int
}

// compareByID orders one workload's instances.
func compareByID(a, b gossip.InstanceInfo) int {
	return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node))
}

// onView takes in a gossip view. Only what changed is worked out again: the plan when
// members or where instances run changed (or a duplicated instance changed readiness,
// which decides which copy is kept); otherwise the derived state of the workloads whose
// instances changed. Owners whose instances are the same list as in the last view are
// not read (see gossip.OwnerInstances), so a change elsewhere costs what it changes.
func (c *core) onView(v gossip.View) {
	if d := v.Decisions; len(d) > 0 && (len(d) != len(c.view.Decisions) || &d[0] != &c.view.Decisions[0]) {
		c.onDecisions(d) // gossip hands out the same slice until the decisions change
	}
	placement, shown := diffNodes(c.view.Nodes, v.Nodes)
	if shown {
		c.index.nodes = nil
	}
	if placement {
		c.index.planNodes = nil
	}
	if !placement && c.updateInstances(c.view.Owners, v.Owners) {
		c.view = v
		return
	}
	c.view, c.planDue = v, true
	c.indexView()
}

// diffNodes says whether the members changed in what placement reads, and in what status shows.
func diffNodes(a, b []gossip.NodeInfo) (placement, shown bool) {
	if len(a) != len(b) {
		return true, true
	}
	if len(a) > 0 && &a[0] == &b[0] {
		return false, false // the same immutable list, handed out again by gossip
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Name != y.Name || x.Alive != y.Alive || x.MilliCPU != y.MilliCPU || x.MemoryBytes != y.MemoryBytes ||
			x.MaxInstances != y.MaxInstances || x.Allows != y.Allows || !maps.Equal(x.Labels, y.Labels) ||
			!slices.Equal(x.HostPaths, y.HostPaths) || !slices.Equal(x.Capabilities, y.Capabilities) {
			return true, true
		}
		if x.Addr != y.Addr || x.Revision != y.Revision || x.APIAddr != y.APIAddr || x.DNSAddr != y.DNSAddr ||
			x.PodSubnet != y.PodSubnet || x.PodSubnetSince != y.PodSubnetSince {
			shown = true
		}
	}
	return false, shown
}

// updateInstances brings the derived state up to date with owners whose instances
// changed only in readiness or address, and reports false when more changed: the caller
// plans again.
func (c *core) updateInstances(old, cur []gossip.OwnerInstances) bool {
	if len(old) != len(cur) || c.index.byWorkload == nil {
		return false
	}
	type change struct{ old, cur *gossip.InstanceInfo }
	var changed []change
	for i := range cur {
		if old[i].Node != cur[i].Node {
			return false
		}
		a, b := old[i].Instances, cur[i].Instances
		if gossip.Same(a, b) {
			continue
		}
		if len(a) != len(b) {
			return false
		}
		for j := range b {
			x, y := &a[j], &b[j]
			if x.ID != y.ID || x.SpecHash != y.SpecHash || x.Running != y.Running ||
				x.Namespace != y.Namespace || x.Workload != y.Workload {
				return false
			}
			if x.Ready != y.Ready || x.Addr != y.Addr || !slices.Equal(x.Ports, y.Ports) {
				changed = append(changed, change{x, y})
			}
		}
	}
	if len(changed) > 0 {
		c.index.planned = nil // readiness changed
	}
	for _, ch := range changed {
		x, y := ch.old, ch.cur
		k := workloadKey{y.Namespace, y.Workload}
		list := slices.Clone(c.index.byWorkload[k])
		i, _ := slices.BinarySearchFunc(list, *y, compareByID)
		list[i] = *y
		c.index.byWorkload[k] = list
		delete(c.index.status, k)
		c.index.statusStale = append(c.index.statusStale, k)
		if x.Ready == y.Ready || y.Node == c.cfg.NodeName {
			continue
		}
		if c.duplicated(list, i) {
			c.planDue = true // which copy is kept depends on readiness
		}
		if c.remote == nil {
			continue // nothing planned yet: the first plan counts them
		}
		wc := c.remote[k]
		current := y.SpecHash == c.hashOf(k)
		wc.remove(x.Running, x.Ready, current)
		wc.add(y.Running, y.Ready, current)
		c.remote[k] = wc
	}
	return true
}

// duplicated reports whether another copy of instance i of a workload's list runs elsewhere.
func (c *core) duplicated(list []gossip.InstanceInfo, i int) bool {
	same := func(j int) bool { return j >= 0 && j < len(list) && list[j].ID == list[i].ID }
	return same(i-1) || same(i+1) || c.instances[list[i].ID] != nil
}

// indexView indexes a view that changed in more than readiness.
func (c *core) indexView() {
	c.index.workloads, c.index.planned = nil, nil
	c.index.byWorkload = map[workloadKey][]gossip.InstanceInfo{}
	c.index.status = map[workloadKey]*remoteStatus{}
	for _, o := range c.view.Owners {
		for _, in := range o.Instances {
			k := workloadKey{in.Namespace, in.Workload}
			c.index.byWorkload[k] = append(c.index.byWorkload[k], in)
		}
	}
	for _, list := range c.index.byWorkload {
		slices.SortFunc(list, compareByID)
	}
}

func (c *core) hasRange(k workloadKey) bool {
	_, ok := c.index.byWorkload[k]
	return ok
}

// remoteInstances are the instances other nodes run of workload k.
func (c *core) remoteInstances(k workloadKey) []gossip.InstanceInfo { return c.index.byWorkload[k] }

// viewInstances are the instances of the view, sorted by namespace, workload, ID and node.
func (c *core) viewInstances() []gossip.InstanceInfo {
	keys := slices.Collect(maps.Keys(c.index.byWorkload))
	sortKeys(keys)
	var out []gossip.InstanceInfo
	for _, k := range keys {
		out = append(out, c.index.byWorkload[k]...)
	}
	return out
}

// remoteStatus is what status shows of the instances other nodes run of workload k.
func (c *core) remoteStatus(k workloadKey) *remoteStatus {
	if rs := c.index.status[k]; rs != nil {
		return rs
	}
	rs := &remoteStatus{}
	for _, in := range c.remoteInstances(k) {
		if in.Node == c.cfg.NodeName {
			continue
		}
		if in.Ready {
			rs.ready++
		}
		rs.instances = append(rs.instances, InstanceStatus{ID: in.ID, Node: in.Node, Addr: in.Addr, Phase: remotePhase(in), SpecHash: in.SpecHash})
	}
	if c.index.status == nil {
		c.index.status = map[workloadKey]*remoteStatus{}
	}
	c.index.status[k] = rs
	return rs
}

// nodeStatuses lists the members for status; without a cluster, only this node.
func (c *core) nodeStatuses() []NodeStatus {
	if c.index.nodes != nil {
		return c.index.nodes
	}
	self := NodeStatus{
		Name: c.cfg.NodeName, Addr: c.cfg.NodeAddr, Alive: true, Labels: c.cfg.Labels,
		MilliCPU: c.cfg.Allocatable.MilliCPU, Memory: c.cfg.Allocatable.MemoryBytes, APIAddr: c.cfg.APIAddr,
	}
	if c.net.claim.Subnet.IsValid() {
		self.PodSubnet = c.net.claim.Subnet.String()
	}
	if c.applied != nil {
		self.Revision = c.applied.Commit
	}
	out := make([]NodeStatus, 0, len(c.view.Nodes)+1)
	out = append(out, self)
	for _, n := range c.view.Nodes {
		if n.Name == c.cfg.NodeName {
			continue
		}
		out = append(out, NodeStatus{
			Name: n.Name, Addr: n.Addr, Alive: n.Alive, Revision: n.Revision, Labels: n.Labels,
			MilliCPU: n.MilliCPU, Memory: n.MemoryBytes, APIAddr: n.APIAddr, PodSubnet: n.PodSubnet,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.index.nodes = out
	return out
}
