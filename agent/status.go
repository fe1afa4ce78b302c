package agent

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// Status is a snapshot of what the agent knows, served at /status and printed by
// `shoal status`. A snapshot is never modified once published.
type Status struct {
	Node string    `json:"node"`
	Time time.Time `json:"time"`
	// Desired is the revision in force: the last one that loaded without errors.
	Desired *spec.Revision `json:"desired,omitempty"`
	// Applied is the last revision whose instances on this node all ran ready.
	Applied *spec.Revision `json:"applied,omitempty"`
	// Converged is true when this node runs exactly its share of Desired, all ready; never
	// while it has not joined the cluster it was told to join.
	Converged bool `json:"converged"`
	// Adopted is true once the first runtime listing was applied: the instances that ran
	// before the agent started are known, and nothing is started or stopped until then.
	Adopted bool `json:"adopted"`
	// Nodes are the cluster's members as this node sees them (itself only without a cluster).
	Nodes []NodeStatus `json:"nodes"`
	// NotJoined says why this node runs nothing: it was told to join a cluster
	// and has not (seeds unreachable, a wrong gossip key, no trusted certificate).
	NotJoined string     `json:"notJoined,omitempty"`
	Sync      SyncStatus `json:"sync"`
	// Timeline is when Desired went through each stage on this node:
	// fetched, validated, planned, pulled, started, ready.
	Timeline  []Stage          `json:"timeline,omitempty"`
	Workloads []WorkloadStatus `json:"workloads"`
}

// SyncStatus is the state of the Git source as the agent last heard it.
type SyncStatus struct {
	LastCheck time.Time `json:"lastCheck,omitempty"`
	// Error is the last failure (unreachable remote, rejected revision); empty when healthy.
	Error string `json:"error,omitempty"`
	// Rejected is the revision refused for Diagnostics while Desired stays in force.
	Rejected *spec.Revision `json:"rejected,omitempty"`
	// Diagnostics are the errors of Rejected, or the warnings of Desired.
	Diagnostics spec.Diagnostics `json:"diagnostics,omitempty"`
	RetryIn     time.Duration    `json:"retryIn,omitempty"`
}

// Stage is one step of a revision's way to serving.
type Stage struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
}

// WorkloadStatus is one Deployment across the cluster, as this node sees it: its own
// instances from the runtime, the others' from gossip.
type WorkloadStatus struct {
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	Replicas  int                `json:"replicas"`
	Ready     int                `json:"ready"`
	SpecHash  string             `json:"specHash"`
	Instances []InstanceStatus   `json:"instances"`
	Unplaced  []planner.Unplaced `json:"unplaced,omitempty"`
}

// InstanceStatus is one instance: where it runs, its phase, restarts and last exit.
type InstanceStatus struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	Phase    Phase  `json:"phase"`
	SpecHash string `json:"specHash"`
	Revision string `json:"revision,omitempty"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"lastExit,omitempty"`
	Message  string `json:"message,omitempty"`
	// ReadinessChanged is when a readiness probe last moved the instance in or out of Ready.
	ReadinessChanged time.Time         `json:"readinessChanged,omitempty"`
	Containers       []ContainerStatus `json:"containers,omitempty"`
}

// ContainerStatus is one container of an instance.
type ContainerStatus struct {
	Name     string `json:"name"`
	Image    string `json:"image"`
	State    string `json:"state"`
	PID      uint32 `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"lastExit,omitempty"`
}

// stage records when the desired revision reached a stage; the latest time wins, so that
// "pulled" is when the last image was there.
func (c *core) stage(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	for i := range c.timeline {
		if c.timeline[i].Name == name {
			if t.After(c.timeline[i].Time) {
				c.timeline[i].Time = t
			}
			return
		}
	}
	c.timeline = append(c.timeline, Stage{Name: name, Time: t})
}

// stageOnce records a stage the first time only.
func (c *core) stageOnce(name string, t time.Time) {
	for _, s := range c.timeline {
		if s.Name == name {
			return
		}
	}
	c.timeline = append(c.timeline, Stage{Name: name, Time: t})
}

// converged reports whether this node runs exactly its share of the plan, all ready.
func (c *core) converged() bool {
	// Before a plan of the desired revision, or while it has not joined the cluster it
	// was told to join, this node cannot know its share: running nothing is not its share
	// being done.
	if c.desired == nil || c.notJoined != "" || c.placement.Revision != c.desired.Revision.Commit {
		return false
	}
	if len(c.mine) != len(c.instances) {
		return false
	}
	for _, as := range c.mine {
		in := c.instances[as.InstanceID]
		if in == nil || in.phase(c.now) != PhaseReady {
			return false
		}
	}
	return true
}

// trackConvergence moves the timeline on as this node's share starts and becomes ready.
func (c *core) trackConvergence() {
	started := true
	for _, as := range c.mine {
		if in := c.instances[as.InstanceID]; in == nil || !in.created {
			started = false
		}
	}
	if started {
		c.stageOnce("started", c.now)
	}
	if c.converged() {
		c.stageOnce("ready", c.now)
		if c.applied == nil || c.applied.Commit != c.desired.Revision.Commit {
			rev := c.desired.Revision
			c.applied = &rev
			c.index.nodes = nil // this node's revision changed
		}
	}
}

// statusSnapshot is a new status snapshot.
func (c *core) statusSnapshot() *Status {
	st := &Status{
		Node:      c.cfg.NodeName,
		Time:      c.now,
		Applied:   c.applied,
		Converged: c.converged(),
		Adopted:   c.adopted,
		Sync:      c.syncState,
		Timeline:  append([]Stage(nil), c.timeline...),
		Nodes:     c.nodeStatuses(),
		NotJoined: c.notJoined,
		Workloads: []WorkloadStatus{},
	}
	if c.desired != nil {
		rev := c.desired.Revision
		st.Desired = &rev
	}
	// Each workload's status is what this node runs of it, merged with what the others
	// run (shared with earlier snapshots while it does not change) and what waits here.
	local := map[workloadKey][]InstanceStatus{}
	localReady := map[workloadKey]int{}
	for _, in := range c.instances {
		k := workloadKey{in.namespace, in.workload}
		is := instanceStatus(in, c.cfg.NodeName, c.now)
		if is.Phase == PhaseReady {
			localReady[k]++
		}
		local[k] = append(local[k], is)
	}
	for _, as := range c.mine {
		if c.instances[as.InstanceID] == nil {
			local[as.w.key] = append(local[as.w.key], InstanceStatus{ID: as.InstanceID, Node: as.Node, Phase: PhasePending, SpecHash: as.SpecHash})
		}
	}
	keys := c.statusWorkloads(local)
	st.Workloads = make([]WorkloadStatus, len(keys))
	for i, k := range keys {
		w := &st.Workloads[i]
		w.Namespace, w.Name = k.namespace, k.name
		if cw := c.workloads[k]; cw != nil {
			w.Replicas, w.SpecHash = cw.replicas, cw.hash
		}
		w.Unplaced = c.unplaced[k]
		remote := c.remoteStatus(k)
		w.Ready = remote.ready
		mine := local[k]
		if len(mine) > 0 {
			w.Ready += localReady[k] // looked up only here: most workloads run nothing on this node
		}
		switch {
		case len(mine) == 0 && remote.instances != nil:
			w.Instances = remote.instances
		case len(mine) == 0:
			w.Instances = []InstanceStatus{}
		default:
			w.Instances = append(mine, remote.instances...)
			slices.SortFunc(w.Instances, func(x, y InstanceStatus) int {
				return cmp.Or(cmp.Compare(x.ID, y.ID), cmp.Compare(x.Node, y.Node))
			})
		}
	}
	return st
}

// statusWorkloads are the workloads status lists, sorted: the desired ones, those the
// plan could not place, those running elsewhere, and those of local.
func (c *core) statusWorkloads(local map[workloadKey][]InstanceStatus) []workloadKey {
	if c.index.workloads == nil {
		seen := map[workloadKey]bool{}
		for k := range c.workloads {
			seen[k] = true
		}
		for k := range c.unplaced {
			seen[k] = true
		}
		for k := range c.index.byWorkload {
			seen[k] = true
		}
		c.index.workloads = make([]workloadKey, 0, len(seen))
		for k := range seen {
			c.index.workloads = append(c.index.workloads, k)
		}
		sortKeys(c.index.workloads)
	}
	keys := c.index.workloads
	var extra []workloadKey
	for k := range local {
		if c.workloads[k] == nil && c.unplaced[k] == nil && !c.hasRange(k) {
			extra = append(extra, k) // e.g. an adopted instance of a removed Deployment
		}
	}
	if len(extra) > 0 {
		keys = append(slices.Clone(keys), extra...)
		sortKeys(keys)
	}
	return keys
}

func sortKeys(keys []workloadKey) {
	slices.SortFunc(keys, func(a, b workloadKey) int {
		return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
	})
}

func instanceStatus(in *instance, node string, now time.Time) InstanceStatus {
	is := InstanceStatus{
		ID: in.id, Node: node, Phase: in.phase(now), SpecHash: in.specHash, Revision: in.revision,
		Restarts: in.restarts(), Message: in.message,
	}
	names := make([]string, 0, len(in.containers))
	for name := range in.containers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := in.containers[name]
		is.Containers = append(is.Containers, ContainerStatus{
			Name: c.name, Image: c.image, State: string(c.status), PID: c.pid, Restarts: c.restarts, LastExit: c.lastExit,
		})
		if c.lastExit != "" {
			is.LastExit = c.lastExit
		}
		if c.readyChanged.After(is.ReadinessChanged) {
			is.ReadinessChanged = c.readyChanged
		}
	}
	return is
}
