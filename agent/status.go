package agent

import (
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
func (a *Agent) stage(name string, t time.Time) {
	if t.IsZero() {
		return
	}
	for i := range a.timeline {
		if a.timeline[i].Name == name {
			if t.After(a.timeline[i].Time) {
				a.timeline[i].Time = t
			}
			return
		}
	}
	a.timeline = append(a.timeline, Stage{Name: name, Time: t})
}

// stageOnce records a stage the first time only.
func (a *Agent) stageOnce(name string, t time.Time) {
	for _, s := range a.timeline {
		if s.Name == name {
			return
		}
	}
	a.timeline = append(a.timeline, Stage{Name: name, Time: t})
}

// converged reports whether this node runs exactly its share of the plan, all ready.
func (a *Agent) converged(now time.Time) bool {
	// A node that has not joined the cluster it was told to join plans nothing: it runs
	// nothing because it cannot know its share, which is not its share being done.
	if a.desired == nil || a.notJoined != "" {
		return false
	}
	mine := a.placement.ForNode(a.cfg.NodeName)
	if len(mine) != len(a.instances) {
		return false
	}
	for _, as := range mine {
		in := a.instances[as.InstanceID]
		if in == nil || in.phase(now) != PhaseReady {
			return false
		}
	}
	return true
}

// trackConvergence moves the timeline on as this node's share starts and becomes ready.
func (a *Agent) trackConvergence(now time.Time) {
	started := true
	for _, as := range a.placement.ForNode(a.cfg.NodeName) {
		if in := a.instances[as.InstanceID]; in == nil || !in.created {
			started = false
		}
	}
	if started {
		a.stageOnce("started", now)
	}
	if a.converged(now) {
		a.stageOnce("ready", now)
		rev := a.desired.Revision
		a.applied = &rev
	}
}

// publish builds and stores a new status snapshot.
func (a *Agent) publish(now time.Time) {
	st := &Status{
		Node:      a.cfg.NodeName,
		Time:      now,
		Applied:   a.applied,
		Converged: a.converged(now),
		Adopted:   a.adopted,
		Sync:      a.syncState,
		Timeline:  append([]Stage(nil), a.timeline...),
		Nodes:     a.nodeStatuses(),
		NotJoined: a.joinError(),
		Workloads: []WorkloadStatus{},
	}
	byKey := map[workloadKey]*WorkloadStatus{}
	workload := func(ns, name string) *WorkloadStatus {
		k := workloadKey{ns, name}
		if w := byKey[k]; w != nil {
			return w
		}
		w := &WorkloadStatus{Namespace: ns, Name: name, Instances: []InstanceStatus{}}
		byKey[k] = w
		return w
	}
	if a.desired != nil {
		rev := a.desired.Revision
		st.Desired = &rev
		for _, d := range a.desired.Objects.Deployments {
			w := workload(d.Metadata.Namespace, d.Metadata.Name)
			w.Replicas = int(*d.Spec.Replicas)
			w.SpecHash = a.hashes[workloadKey{d.Metadata.Namespace, d.Metadata.Name}]
		}
	}
	for _, u := range a.placement.Unplaced {
		w := workload(u.Namespace, u.Workload)
		w.Unplaced = append(w.Unplaced, u)
	}
	for _, in := range a.instances {
		w := workload(in.namespace, in.workload)
		is := instanceStatus(in, a.cfg.NodeName, now)
		if is.Phase == PhaseReady {
			w.Ready++
		}
		w.Instances = append(w.Instances, is)
	}
	for _, in := range a.lastView.Instances {
		if in.Node == a.cfg.NodeName {
			continue
		}
		w := workload(in.Namespace, in.Workload)
		if in.Ready {
			w.Ready++
		}
		w.Instances = append(w.Instances, InstanceStatus{ID: in.ID, Node: in.Node, Phase: remotePhase(in), SpecHash: in.SpecHash})
	}
	for _, as := range a.placement.ForNode(a.cfg.NodeName) {
		if a.instances[as.InstanceID] == nil {
			w := workload(as.Namespace, as.Workload)
			w.Instances = append(w.Instances, InstanceStatus{ID: as.InstanceID, Node: as.Node, Phase: PhasePending, SpecHash: as.SpecHash})
		}
	}
	for _, w := range byKey {
		sort.Slice(w.Instances, func(i, j int) bool {
			x, y := w.Instances[i], w.Instances[j]
			return x.ID < y.ID || x.ID == y.ID && x.Node < y.Node
		})
		st.Workloads = append(st.Workloads, *w)
	}
	sort.Slice(st.Workloads, func(i, j int) bool {
		x, y := st.Workloads[i], st.Workloads[j]
		return x.Namespace < y.Namespace || x.Namespace == y.Namespace && x.Name < y.Name
	})
	a.status.Store(st)
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
