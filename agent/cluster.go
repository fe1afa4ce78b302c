package agent

import (
	"context"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
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
	// Decide records and spreads a decision of this node (a rollout verdict, a commit
	// status sent); the snapshot's Decisions bring back every node's.
	Decide(key string, body []byte) (gossip.Decision, error)
	// JoinError says why this node is not part of the cluster it was told to
	// join (nil once it joined, or when told to join none). While it is not
	// nil the agent runs nothing: planning alone would run every workload a
	// second time beside the real cluster's.
	JoinError() error
}

// Option adds an optional collaborator to an Agent.
type Option func(*Agent)

// CommitLoader loads an earlier commit of the Git source; *source.Poller is one. A
// revert runs the spec of the commit a Deployment last rolled out in full, which the
// agent no longer holds after a restart.
type CommitLoader interface {
	LoadCommit(ctx context.Context, commit string) (*spec.Desired, error)
}

// WithCommitLoader lets the agent load earlier commits, for reverts. Without one, a
// revert can go back only to a revision this agent took in since it started.
func WithCommitLoader(l CommitLoader) Option { return func(a *Agent) { a.loader = l } }

// Reporter sends one transition of a commit's fate to where people look (commit statuses,
// a webhook); cmd/shoal adapts a notify.Notifier. Send retries by itself and returns once
// the report was delivered, refused for good, or ctx ended.
type Reporter interface {
	Send(ctx context.Context, r Report) error
}

// WithReporter makes the agent report the commits it is the reporter of.
func WithReporter(r Reporter) Option { return func(a *Agent) { a.reporter = r } }

// WithCluster makes the agent plan with the members and instances gossip reports, and
// publish its own, instead of planning for itself alone.
func WithCluster(c Cluster) Option { return func(a *Agent) { a.cluster = c } }

// clusterView converts gossip's nodes and instances into the planner's terms, leaving
// out node self: the core's own records are fresher than what gossip says about them.
func clusterView(nodes []gossip.NodeInfo, instances []gossip.InstanceInfo, self string) planner.View {
	v := planner.View{Nodes: make([]planner.Node, 0, len(nodes)+1), Instances: make([]planner.Instance, 0, len(instances))}
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		v.Nodes = append(v.Nodes, planner.Node{
			Name: n.Name, Labels: plannerLabels(n.Labels), Alive: n.Alive,
			Allocatable:  planner.Resources{MilliCPU: n.MilliCPU, MemoryBytes: n.MemoryBytes},
			MaxInstances: n.MaxInstances,
			Permissions:  planner.Permissions{Allow: planner.Permission(n.Allows), HostPaths: n.HostPaths, Capabilities: n.Capabilities},
		})
	}
	for _, in := range instances {
		if in.Node == self {
			continue
		}
		v.Instances = append(v.Instances, planner.Instance{
			ID: in.ID, Namespace: in.Namespace, Workload: in.Workload, Node: in.Node,
			SpecHash: in.SpecHash, Ready: in.Ready, Running: in.Running,
		})
	}
	return v
}

// gossipInstances is what this node tells the cluster it runs, by ID.
func (c *core) gossipInstances() []gossip.InstanceInfo {
	list := make([]gossip.InstanceInfo, 0, len(c.instances))
	for _, in := range c.instances {
		if in.stopping || !(in.created || in.busy) {
			continue
		}
		info := gossip.InstanceInfo{
			ID: in.id, Namespace: in.namespace, Workload: in.workload, Node: c.cfg.NodeName,
			SpecHash: in.specHash, Ready: in.phase(c.now) == PhaseReady, Running: true, Addr: c.addrOf(in).String(),
		}
		if w := c.workloads[workloadKey{in.namespace, in.workload}]; w != nil {
			info.Ports = w.ports
		}
		list = append(list, info)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	return list
}

// equalInstances is false for nil and an empty list: the first list is always published.
func equalInstances(a, b []gossip.InstanceInfo) bool { return reflect.DeepEqual(a, b) }

func equalMeta(a, b gossip.Meta) bool { return reflect.DeepEqual(a, b) }

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
		{c.Permissions.HostPort, planner.AllowHostPort},
	} {
		if f.allowed {
			perms.Allow |= f.p
		}
	}
	for _, dir := range c.Permissions.HostPaths {
		perms.HostPaths = append(perms.HostPaths, filepath.Clean(dir)) // as the executor cleans them
	}
	return planner.Node{
		Name: c.NodeName, Labels: plannerLabels(c.Labels), Allocatable: c.Allocatable, Alive: true,
		MaxInstances: c.MaxInstances, Permissions: perms,
	}
}

// nodeMeta is what this node tells the cluster about itself.
func (c *core) nodeMeta() gossip.Meta {
	m := c.cfg.Meta()
	if c.applied != nil {
		m.Revision = c.applied.Commit
	}
	if cl := c.net.claim; cl.Subnet.IsValid() {
		m.PodSubnet, m.PodSubnetSince = cl.Subnet.String(), cl.Since
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
	// PodSubnet is the node's pod subnet, as it claims it.
	PodSubnet string `json:"podSubnet,omitempty"`
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
