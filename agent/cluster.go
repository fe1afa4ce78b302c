package agent

import (
	"path/filepath"
	"reflect"
	"sort"
	"time"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/planner"
)

// Cluster is the gossip membership the agent plans with; *gossip.Cluster is one. Its
// methods must not block: the loop calls them.
type Cluster interface {
	// Snapshot is the cluster as gossip sees it now; it is never modified.
	Snapshot() gossip.View
	// Changes signals (coalesced) that the snapshot changed.
	Changes() <-chan struct{}
	// SetInstances publishes this node's instances.
	SetInstances([]gossip.InstanceInfo) error
	// UpdateNode publishes this node's metadata.
	UpdateNode(gossip.Meta) error
	// JoinError says why this node is not part of the cluster it was told to
	// join (nil once it joined, or when told to join none). While it is not
	// nil the agent runs nothing: planning alone would run every workload a
	// second time beside the real cluster's.
	JoinError() error
}

// Option adds an optional collaborator to an Agent.
type Option func(*Agent)

// WithCluster makes the agent plan with the members and instances gossip reports, and
// publish its own, instead of planning for itself alone.
func WithCluster(c Cluster) Option { return func(a *Agent) { a.cluster = c } }

// joinError is why this node runs nothing, or "" when it may plan.
func (a *Agent) joinError() string {
	if a.cluster == nil {
		return ""
	}
	if err := a.cluster.JoinError(); err != nil {
		return err.Error()
	}
	return ""
}

// clusterView converts the gossip snapshot into the planner's terms, leaving out this
// node: the loop's own records are fresher than what gossip says about them.
func (a *Agent) clusterView() (nodes []planner.Node, instances []planner.Instance) {
	if a.cluster == nil {
		return nil, nil
	}
	a.lastView = a.cluster.Snapshot()
	for _, n := range a.lastView.Nodes {
		if n.Name == a.cfg.NodeName {
			continue
		}
		nodes = append(nodes, planner.Node{
			Name: n.Name, Labels: n.Labels, Alive: n.Alive,
			Allocatable:  planner.Resources{MilliCPU: n.MilliCPU, MemoryBytes: n.MemoryBytes},
			MaxInstances: n.MaxInstances,
			Permissions:  planner.Permissions{Allow: planner.Permission(n.Allows), HostPaths: n.HostPaths, Capabilities: n.Capabilities},
		})
	}
	for _, in := range a.lastView.Instances {
		if in.Node == a.cfg.NodeName {
			continue
		}
		instances = append(instances, planner.Instance{
			ID: in.ID, Namespace: in.Namespace, Workload: in.Workload, Node: in.Node,
			SpecHash: in.SpecHash, Ready: in.Ready, Running: in.Running,
		})
	}
	return nodes, instances
}

// publishCluster tells the cluster what this node runs and which revision it applied,
// when that changed since the last time.
func (a *Agent) publishCluster(now time.Time) {
	if a.cluster == nil {
		return
	}
	list := make([]gossip.InstanceInfo, 0, len(a.instances))
	for _, in := range a.instances {
		if in.stopping || !(in.created || in.busy) {
			continue
		}
		info := gossip.InstanceInfo{
			ID: in.id, Namespace: in.namespace, Workload: in.workload, Node: a.cfg.NodeName,
			SpecHash: in.specHash, Ready: in.phase(now) == PhaseReady, Running: true, Addr: a.cfg.NodeAddr,
		}
		if a.desired != nil {
			if d := a.desired.Objects.Deployment(in.namespace, in.workload); d != nil {
				for _, c := range d.Spec.Template.Spec.Containers {
					for _, p := range c.Ports {
						hp := p.HostPort()
						info.Ports = append(info.Ports, gossip.Port{Name: p.Name, Port: hp.Port, Protocol: hp.Protocol})
					}
				}
			}
		}
		list = append(list, info)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	if !reflect.DeepEqual(list, a.published) {
		if err := a.cluster.SetInstances(list); err != nil {
			a.log.Error("publishing instances to the cluster failed", "err", err)
		} else {
			a.published = list
		}
	}
	meta := a.nodeMeta()
	if !reflect.DeepEqual(meta, a.publishedMeta) {
		if err := a.cluster.UpdateNode(meta); err != nil {
			a.log.Error("publishing node metadata failed", "err", err)
		} else {
			a.publishedMeta = meta
		}
	}
}

// Meta is what a node with this configuration tells the cluster about itself before it
// applied a revision.
func (c *Config) Meta() gossip.Meta {
	p := c.node().Permissions
	return gossip.Meta{
		Labels: c.Labels, MilliCPU: c.Allocatable.MilliCPU, MemoryBytes: c.Allocatable.MemoryBytes,
		APIAddr: c.APIAddr, DNSAddr: c.DNSAddr,
		MaxInstances: c.MaxInstances, Allows: uint64(p.Allow), HostPaths: p.HostPaths, Capabilities: p.Capabilities,
	}
}

// node is this node as the planner sees it; the cluster sees the same through Meta.
func (c *Config) node() planner.Node {
	perms := planner.Permissions{Capabilities: c.Permissions.Capabilities}
	for _, f := range []struct {
		allowed bool
		p       planner.Permission
	}{
		{c.Permissions.Privileged, planner.AllowPrivileged},
		{c.Permissions.HostNetwork, planner.AllowHostNetwork},
		{c.Permissions.HostPID, planner.AllowHostPID},
		{c.Permissions.HostIPC, planner.AllowHostIPC},
		{c.Permissions.SeccompUnconfined, planner.AllowSeccompUnconfined},
		{c.Permissions.SeccompProfileRoot != "", planner.AllowSeccompLocalhost},
	} {
		if f.allowed {
			perms.Allow |= f.p
		}
	}
	for _, dir := range c.Permissions.HostPaths {
		perms.HostPaths = append(perms.HostPaths, filepath.Clean(dir)) // as the executor cleans them
	}
	return planner.Node{
		Name: c.NodeName, Labels: c.Labels, Allocatable: c.Allocatable, Alive: true,
		MaxInstances: c.MaxInstances, Permissions: perms,
	}
}

// nodeMeta is what this node tells the cluster about itself.
func (a *Agent) nodeMeta() gossip.Meta {
	m := a.cfg.Meta()
	if a.applied != nil {
		m.Revision = a.applied.Commit
	}
	return m
}

// NodeStatus is one cluster member as this node sees it.
type NodeStatus struct {
	Name     string            `json:"name"`
	Addr     string            `json:"addr,omitempty"`
	Alive    bool              `json:"alive"`
	Revision string            `json:"revision,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	MilliCPU int64             `json:"milliCPU"`
	Memory   int64             `json:"memoryBytes"`
	APIAddr  string            `json:"apiAddr,omitempty"`
}

// nodeStatuses lists the members for status; without a cluster, only this node.
func (a *Agent) nodeStatuses() []NodeStatus {
	self := NodeStatus{
		Name: a.cfg.NodeName, Addr: a.cfg.NodeAddr, Alive: true, Labels: a.cfg.Labels,
		MilliCPU: a.cfg.Allocatable.MilliCPU, Memory: a.cfg.Allocatable.MemoryBytes, APIAddr: a.cfg.APIAddr,
	}
	if a.applied != nil {
		self.Revision = a.applied.Commit
	}
	out := []NodeStatus{self}
	for _, n := range a.lastView.Nodes {
		if n.Name == a.cfg.NodeName {
			continue
		}
		out = append(out, NodeStatus{
			Name: n.Name, Addr: n.Addr, Alive: n.Alive, Revision: n.Revision, Labels: n.Labels,
			MilliCPU: n.MilliCPU, Memory: n.MemoryBytes, APIAddr: n.APIAddr,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// remotePhase is how status shows an instance another node runs.
func remotePhase(in gossip.InstanceInfo) Phase {
	switch {
	case in.Ready:
		return PhaseReady
	case in.Running:
		return PhaseRunning
	default:
		return PhasePending
	}
}
