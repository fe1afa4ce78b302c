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
// workload's range, and what is derived from a range is kept until the range changes.
type viewIndex struct {
	// ranges are the bounds of each workload's instances in the view, which is sorted
	// by namespace, workload, ID and node.
	ranges map[workloadKey][2]int
	// status is each workload's instances as status shows them, built on demand and
	// dropped when they change.
	status map[workloadKey]*remoteStatus
	// nodes is Status.Nodes, built on demand; nil when out of date.
	nodes []NodeStatus
	// planned is the view in the planner's terms without this node, built on demand;
	// nil when out of date. Plans of new revisions on an unchanged view reuse it.
	planned *planner.View
	// workloads are the workloads status lists, sorted, built on demand; nil when out of
	// date (a revision, a plan, a view that changed in more than readiness).
	workloads []workloadKey
}

// remoteStatus is what status shows of the instances other nodes run of one workload.
type remoteStatus struct {
	instances []InstanceStatus // sorted by ID and node, never modified
	ready     int
}

func compareInfo(a, b gossip.InstanceInfo) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload),
		cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node))
}

// onView takes in a gossip view. Only what changed is worked out again: the plan when
// members or where instances run changed (or a duplicated instance changed readiness,
// which decides which copy is kept); otherwise the derived state of the workloads whose
// instances changed.
func (c *core) onView(v gossip.View) {
	placement, shown := diffNodes(c.view.Nodes, v.Nodes)
	if shown {
		c.index.nodes = nil
	}
	if !placement && c.updateInstances(c.view.Instances, v.Instances) {
		c.view = v
		c.index.planned = nil // readiness changed
		return
	}
	if !slices.IsSortedFunc(v.Instances, compareInfo) { // gossip.Cluster sorts; be sure
		v.Instances = slices.Clone(v.Instances)
		slices.SortFunc(v.Instances, compareInfo)
	}
	c.view, c.planDue = v, true
	c.indexView()
}

// diffNodes says whether the members changed in what placement reads, and in what status shows.
func diffNodes(a, b []gossip.NodeInfo) (placement, shown bool) {
	if len(a) != len(b) {
		return true, true
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Name != y.Name || x.Alive != y.Alive || x.MilliCPU != y.MilliCPU || x.MemoryBytes != y.MemoryBytes ||
			x.MaxInstances != y.MaxInstances || x.Allows != y.Allows || !maps.Equal(x.Labels, y.Labels) ||
			!slices.Equal(x.HostPaths, y.HostPaths) || !slices.Equal(x.Capabilities, y.Capabilities) {
			return true, true
		}
		if x.Addr != y.Addr || x.Revision != y.Revision || x.APIAddr != y.APIAddr || x.DNSAddr != y.DNSAddr {
			shown = true
		}
	}
	return false, shown
}

// updateInstances brings the derived state up to date with instances that changed only
// in readiness or address, and reports false when more changed: the caller plans again.
func (c *core) updateInstances(old, cur []gossip.InstanceInfo) bool {
	if len(old) != len(cur) || c.index.ranges == nil {
		return false
	}
	var changed []int
	for i := range cur {
		x, y := &old[i], &cur[i]
		if x.ID != y.ID || x.Node != y.Node || x.SpecHash != y.SpecHash || x.Running != y.Running ||
			x.Namespace != y.Namespace || x.Workload != y.Workload {
			return false
		}
		if x.Ready != y.Ready || x.Addr != y.Addr || !slices.Equal(x.Ports, y.Ports) {
			changed = append(changed, i)
		}
	}
	for _, i := range changed {
		x, y := &old[i], &cur[i]
		k := workloadKey{y.Namespace, y.Workload}
		delete(c.index.status, k)
		if x.Ready == y.Ready || y.Node == c.cfg.NodeName {
			continue
		}
		if c.duplicated(cur, i) {
			c.planDue = true // which copy is kept depends on readiness
		}
		wc := c.remote[k]
		current := y.SpecHash == c.hashOf(k)
		wc.remove(x.Running, x.Ready, current)
		wc.add(y.Running, y.Ready, current)
		c.remote[k] = wc
	}
	return true
}

// duplicated reports whether another copy of instance i runs elsewhere.
func (c *core) duplicated(list []gossip.InstanceInfo, i int) bool {
	same := func(j int) bool {
		return j >= 0 && j < len(list) && list[j].ID == list[i].ID && list[j].Namespace == list[i].Namespace && list[j].Workload == list[i].Workload
	}
	return same(i-1) || same(i+1) || c.instances[list[i].ID] != nil
}

// indexView indexes a view that changed in more than readiness.
func (c *core) indexView() {
	c.index.workloads, c.index.planned = nil, nil
	c.index.ranges = map[workloadKey][2]int{}
	c.index.status = map[workloadKey]*remoteStatus{}
	list := c.view.Instances
	for start := 0; start < len(list); {
		end := start + 1
		for end < len(list) && list[end].Namespace == list[start].Namespace && list[end].Workload == list[start].Workload {
			end++
		}
		c.index.ranges[workloadKey{list[start].Namespace, list[start].Workload}] = [2]int{start, end}
		start = end
	}
}

func (c *core) hasRange(k workloadKey) bool {
	_, ok := c.index.ranges[k]
	return ok
}

// remoteInstances are the instances other nodes run of workload k.
func (c *core) remoteInstances(k workloadKey) []gossip.InstanceInfo {
	r, ok := c.index.ranges[k]
	if !ok {
		return nil
	}
	return c.view.Instances[r[0]:r[1]]
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
		rs.instances = append(rs.instances, InstanceStatus{ID: in.ID, Node: in.Node, Phase: remotePhase(in), SpecHash: in.SpecHash})
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
			MilliCPU: n.MilliCPU, Memory: n.MemoryBytes, APIAddr: n.APIAddr,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.index.nodes = out
	return out
}
