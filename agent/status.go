package agent

import (
	"cmp"
	"maps"
	"slices"
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
	// Commits are the fates of the commits this node fetched, newest first.
	Commits []CommitStatus `json:"commits,omitempty"`
	// Rollouts counts the rollouts this node decided.
	Rollouts RolloutStats `json:"rollouts"`
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
	// Rollout is the rollout to the desired spec: in progress, failed, reverted or done.
	Rollout *WorkloadRollout `json:"rollout,omitempty"`
}

// InstanceStatus is one instance: where it runs, its phase, restarts and last exit.
type InstanceStatus struct {
	ID   string `json:"id"`
	Node string `json:"node"`
	// Addr is where the instance is reached: its own address on the pod network, or its node's.
	Addr     string `json:"addr,omitempty"`
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
	// Init is set for an init container, Sidecar for one that keeps running beside the
	// app containers (restartPolicy Always).
	Init    bool `json:"init,omitempty"`
	Sidecar bool `json:"sidecar,omitempty"`
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
		Commits:   c.commitStatuses(),
		Rollouts:  c.rolloutStats,
	}
	st.Rollouts.Buckets = slices.Clone(st.Rollouts.Buckets)
	if c.desired != nil {
		rev := c.desired.Revision
		st.Desired = &rev
	}
	// Each workload's status is what the others run of it (kept from earlier snapshots
	// while it does not change), merged with what this node runs and what waits here:
	// an event costs this node's instances, not a pass over every workload.
	local := map[workloadKey][]InstanceStatus{}
	localReady := map[workloadKey]int{}
	for _, in := range c.instances {
		k := workloadKey{in.namespace, in.workload}
		is := instanceStatus(in, c.cfg.NodeName, c.now)
		if addr := c.addrOf(in); addr.IsValid() && (in.created || in.busy) {
			is.Addr = addr.String()
		}
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
	st.Workloads = slices.Clone(c.statusBase())
	for k := range local {
		if c.workloads[k] == nil && c.unplaced[k] == nil && !c.hasRange(k) {
			st.Workloads = append(st.Workloads, c.remoteOnlyStatus(k)) // e.g. an adopted instance of a removed Deployment
		}
	}
	if len(st.Workloads) > len(c.index.workloads) {
		slices.SortFunc(st.Workloads, compareWorkloadStatus)
	}
	for k, mine := range local {
		i, _ := slices.BinarySearchFunc(st.Workloads, k, func(w WorkloadStatus, k workloadKey) int {
			return cmp.Or(cmp.Compare(w.Namespace, k.namespace), cmp.Compare(w.Name, k.name))
		})
		w := &st.Workloads[i]
		w.Ready += localReady[k]
		w.Instances = c.mergeStatus(k, mine, w.Instances)
	}
	for i := range st.Workloads {
		w := &st.Workloads[i]
		if k := (workloadKey{w.Namespace, w.Name}); c.inRollout(k) {
			wr := c.workloadRollout(k, true)
			w.Rollout = &wr
		}
	}
	for k := range c.index.statusMerged {
		if local[k] == nil {
			delete(c.index.statusMerged, k) // this node no longer runs it
		}
	}
	return st
}

// mergedStatus is a workload's instances in status: mine and remote merged.
type mergedStatus struct{ mine, remote, merged []InstanceStatus }

// mergeStatus merges this node's instances of workload k with the others', or returns
// the last merge when neither changed.
func (c *core) mergeStatus(k workloadKey, mine, remote []InstanceStatus) []InstanceStatus {
	last, ok := c.index.statusMerged[k]
	if ok && len(last.remote) == len(remote) && (len(remote) == 0 || &last.remote[0] == &remote[0]) &&
		slices.EqualFunc(last.mine, mine, equalInstanceStatus) {
		return last.merged
	}
	merged := append(slices.Clone(mine), remote...)
	slices.SortFunc(merged, func(x, y InstanceStatus) int {
		return cmp.Or(cmp.Compare(x.ID, y.ID), cmp.Compare(x.Node, y.Node))
	})
	if c.index.statusMerged == nil {
		c.index.statusMerged = map[workloadKey]mergedStatus{}
	}
	c.index.statusMerged[k] = mergedStatus{mine, remote, merged}
	return merged
}

func equalInstanceStatus(a, b InstanceStatus) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Addr == b.Addr && a.Phase == b.Phase && a.SpecHash == b.SpecHash &&
		a.Revision == b.Revision && a.Restarts == b.Restarts && a.LastExit == b.LastExit &&
		a.Message == b.Message && a.ReadinessChanged.Equal(b.ReadinessChanged) && slices.Equal(a.Containers, b.Containers)
}

func compareWorkloadStatus(a, b WorkloadStatus) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// statusBase is the status of every workload status lists without this node's
// instances, sorted: built when the workloads change, and patched for a workload whose
// instances elsewhere changed. A snapshot copies it: it is never published as it is.
func (c *core) statusBase() []WorkloadStatus {
	keys := c.statusWorkloads()
	if len(c.index.statusBase) != len(keys) || len(keys) > 0 && c.index.statusBaseOf != &keys[0] {
		c.index.statusBase = make([]WorkloadStatus, len(keys))
		for i, k := range keys {
			c.index.statusBase[i] = c.remoteOnlyStatus(k)
		}
		if len(keys) > 0 {
			c.index.statusBaseOf = &keys[0]
		}
		c.index.statusStale = nil
	}
	for _, k := range c.index.statusStale {
		if i, ok := slices.BinarySearchFunc(keys, k, compareKeys); ok {
			c.index.statusBase[i] = c.remoteOnlyStatus(k)
		}
	}
	c.index.statusStale = c.index.statusStale[:0]
	return c.index.statusBase
}

// remoteOnlyStatus is workload k's status without this node's instances.
func (c *core) remoteOnlyStatus(k workloadKey) WorkloadStatus {
	w := WorkloadStatus{Namespace: k.namespace, Name: k.name, Unplaced: c.unplaced[k], Instances: []InstanceStatus{}}
	if cw := c.workloads[k]; cw != nil {
		w.Replicas, w.SpecHash = cw.replicas, cw.hash
	}
	remote := c.remoteStatus(k)
	w.Ready = remote.ready
	if remote.instances != nil {
		w.Instances = slices.Clip(remote.instances) // a merge with local ones copies
	}
	return w
}

// statusWorkloads are the workloads status lists, sorted: the desired ones, those the
// plan could not place, and those running elsewhere.
func (c *core) statusWorkloads() []workloadKey {
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
	return c.index.workloads
}

func compareKeys(a, b workloadKey) int {
	return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
}

func sortKeys(keys []workloadKey) { slices.SortFunc(keys, compareKeys) }

func instanceStatus(in *instance, node string, now time.Time) InstanceStatus {
	is := InstanceStatus{
		ID: in.id, Node: node, Phase: in.phase(now), SpecHash: in.specHash, Revision: in.revision,
		Restarts: in.restarts(), Message: in.message,
	}
	// In the order they start: init containers first.
	names := slices.Clone(in.order)
	if len(names) != len(in.containers) {
		names = slices.Sorted(maps.Keys(in.containers))
	}
	for _, name := range names {
		c := in.containers[name]
		state := string(c.status)
		switch {
		case c.completed():
			state = "completed"
		case !c.created:
			state = "waiting" // to be started: on the init containers before it, or on the instance's start
		}
		is.Containers = append(is.Containers, ContainerStatus{
			Name: c.name, Image: c.image, State: state, PID: c.pid, Restarts: c.restarts, LastExit: c.lastExit,
			Init: c.init > 0, Sidecar: c.sidecar,
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
