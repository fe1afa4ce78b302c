package agent

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// reconcile plans when the plan's inputs changed, and decides the actions that move this
// node towards its share of the plan. It is cheap when nothing changed: every action is
// guarded by the record's state.
func (c *core) reconcile() {
	if !c.adopted || c.desired == nil {
		return // adopt before starting anything; never stop anything without a desired state
	}
	if c.notJoined != "" {
		return // planning alone would duplicate the cluster's workloads
	}
	if c.revertWaiting {
		c.tend() // what runs keeps running; nothing is started or stopped until the spec to go back to is here
		return
	}
	if c.planDue {
		c.plan()
	}
	counts := c.counts()
	for _, s := range c.placement.StopsOn(c.cfg.NodeName) {
		if in := c.instances[s.Instance.ID]; in != nil {
			c.stop(in, s.Reason)
		}
	}
	held := c.portHolders()
	for _, ro := range c.placement.Rollouts {
		c.rollOut(ro, counts[workloadKey{ro.Namespace, ro.Workload}], held)
	}
	for _, as := range c.mine {
		c.ensure(as, counts[as.w.key], held)
	}
	// Restarts come after the plan's stops: an instance adopted after the agent restarted
	// with stricter permissions is stopped (the plan does not keep it on a node that
	// refuses it) before a crash of it could be restarted in place, which the executor
	// does not check again.
	c.tend()
	c.trackConvergence()
}

// tend restarts, probes and advances this node's instances, and stops those outside its
// pod subnet.
func (c *core) tend() {
	for _, id := range c.instanceIDs() {
		in := c.instances[id]
		if c.outsideSubnet(in) {
			c.stop(in, "its address "+in.addr.String()+" is outside this node's pod subnet "+c.net.claim.Subnet.String())
			continue
		}
		c.restartDue(in)
		c.ensureProbes(in)
		c.advance(in)
	}
}

// plan places every replica on the cluster as this node sees it, and keeps this node's
// share with the compiled workloads, and what the other nodes run, for pacing.
func (c *core) plan() {
	c.planDue = false
	view := c.planView()
	if c.index.planNodes == nil {
		c.index.planNodes = planner.IndexNodes(view.Nodes)
	}
	c.placement = c.planner.PlanNode(c.effective, c.index.planNodes, view.Instances, c.cfg.NodeName)
	hashes := make(map[*spec.Deployment]string, len(c.workloads))
	for _, w := range c.workloads {
		hashes[w.d] = w.hash
	}
	c.rd.planInputs = &PlanInputs{Desired: c.effective, View: view, PodNetwork: c.cfg.Network.On(), Hashes: hashes}
	c.stageOnce("planned", c.now)
	c.mine = c.mine[:0]
	for _, as := range c.placement.ForNode(c.cfg.NodeName) {
		if w := c.workloads[workloadKey{as.Namespace, as.Workload}]; w != nil {
			c.mine = append(c.mine, assignment{as, w})
		}
	}
	c.unplaced = map[workloadKey][]planner.Unplaced{}
	for _, u := range c.placement.Unplaced {
		k := workloadKey{u.Namespace, u.Workload}
		c.unplaced[k] = append(c.unplaced[k], u)
	}
	c.index.workloads = nil
	c.remote = make(map[workloadKey]workloadCount, len(c.index.byWorkload))
	for k, list := range c.index.byWorkload {
		hash := c.hashOf(k)
		var wc workloadCount
		for _, in := range list {
			if in.Node != c.cfg.NodeName {
				wc.add(in.Running, in.Ready, in.SpecHash == hash)
			}
		}
		c.remote[k] = wc
	}
}

// planView is the cluster as this node sees it: the members and instances gossip
// reports, and itself with its own instances as the core knows them.
func (c *core) planView() planner.View {
	if c.index.planned == nil {
		rv := clusterView(c.view.Nodes, c.viewInstances(), c.cfg.NodeName)
		c.index.planned = &rv
	}
	v := planner.View{Nodes: append(slices.Clip(c.index.planned.Nodes), c.cfg.node())}
	var local []planner.Instance
	for _, in := range c.instances {
		if in.stopping {
			continue
		}
		local = append(local, planner.Instance{
			ID: in.id, Namespace: in.namespace, Workload: in.workload, Node: c.cfg.NodeName,
			SpecHash: in.specHash, Ready: in.phase(c.now) == PhaseReady, Running: in.created || in.busy,
		})
	}
	// The view arrives sorted as the planner sorts it; merged in order, the planner's
	// sort finds it sorted and costs a pass instead of a sort of every instance. A plan
	// whose view and local instances are those of the last (a new revision) reuses the merge.
	slices.SortFunc(local, comparePlanned)
	if c.index.merged == nil || c.index.mergedFrom != c.index.planned || !slices.Equal(local, c.index.mergedLocal) {
		c.index.merged = mergeSorted(c.index.planned.Instances, local)
		c.index.mergedFrom, c.index.mergedLocal = c.index.planned, local
	}
	v.Instances = c.index.merged
	return v
}

func comparePlanned(a, b planner.Instance) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload, b.Workload),
		cmp.Compare(a.ID, b.ID), cmp.Compare(a.Node, b.Node))
}

// mergeSorted merges two lists sorted by comparePlanned. b is this node's few instances and
// a the cluster's many: each of b is placed by binary search and the runs of a between them
// are copied whole.
func mergeSorted(a, b []planner.Instance) []planner.Instance {
	out := make([]planner.Instance, 0, len(a)+len(b))
	for _, in := range b {
		i, _ := slices.BinarySearchFunc(a, in, func(x, in planner.Instance) int {
			// Ties go to a, as they did in a merge of the two.
			return cmp.Or(comparePlanned(x, in), -1)
		})
		out, a = append(append(out, a[:i]...), in), a[i:]
	}
	return append(out, a...)
}

func (c *core) hashOf(k workloadKey) string {
	if w := c.workloads[k]; w != nil {
		return w.hash
	}
	return ""
}

// workloadCount is what rollout pacing needs to know of one workload across the cluster.
type workloadCount struct {
	running int // instances that run or start, of any spec
	ready   int // instances counted as available, of any spec
	// unreadyCurrent counts instances of the current spec that run but are not ready yet.
	unreadyCurrent int
}

func (wc *workloadCount) add(running, ready, current bool) { wc.count(running, ready, current, 1) }

func (wc *workloadCount) remove(running, ready, current bool) { wc.count(running, ready, current, -1) }

func (wc *workloadCount) count(running, ready, current bool, n int) {
	if running {
		wc.running += n
		if !ready && current {
			wc.unreadyCurrent += n
		}
	}
	if ready {
		wc.ready += n
	}
}

// counts adds this node's instances, as they are now, to the other nodes' as of the plan,
// for the workloads pacing looks at: those with a rollout or an assignment here. An
// instance being stopped still runs until its stop returns: it counts against maxSurge.
func (c *core) counts() map[workloadKey]*workloadCount {
	out := map[workloadKey]*workloadCount{}
	want := func(k workloadKey) {
		if out[k] == nil {
			r := c.remote[k]
			out[k] = &r
		}
	}
	for _, ro := range c.placement.Rollouts {
		want(workloadKey{ro.Namespace, ro.Workload})
	}
	for _, as := range c.mine {
		want(as.w.key)
	}
	for _, in := range c.instances {
		wc := out[workloadKey{in.namespace, in.workload}]
		switch {
		case wc == nil:
		case in.stopping:
			wc.running++
		default:
			wc.add(in.created || in.busy, in.phase(c.now) == PhaseReady, in.specHash == c.hashOf(workloadKey{in.namespace, in.workload}))
		}
	}
	return out
}

// portHolders maps each host port in use on this node to the instance holding it.
func (c *core) portHolders() map[spec.HostPort]*instance {
	held := map[spec.HostPort]*instance{}
	for _, in := range c.instances {
		if w := c.workloads[workloadKey{in.namespace, in.workload}]; w != nil && (in.created || in.busy) {
			for _, p := range w.hostPorts {
				held[p] = in
			}
		}
	}
	return held
}

// rollOut stops this node's outdated instances of a workload as fast as its strategy
// allows: all at once for Recreate; for RollingUpdate while enough instances stay ready
// (replicas − maxUnavailable), or, where an old instance holds a host port a new one
// needs, old before new, one at a time. Readiness is the record's, fresher than the plan's.
func (c *core) rollOut(ro planner.Rollout, count *workloadCount, held map[spec.HostPort]*instance) {
	if count == nil {
		return
	}
	minReady := ro.Replicas - ro.MaxUnavailable
	wantsPort := c.portsWanted(workloadKey{ro.Namespace, ro.Workload}, ro.SpecHash)
	for _, old := range ro.Outdated {
		in := c.instances[old.ID]
		if old.Node != c.cfg.NodeName || in == nil || in.busy || in.stopping {
			continue
		}
		ready := in.phase(c.now) == PhaseReady
		switch {
		case ro.Strategy == spec.StrategyRecreate:
			c.stop(in, "Recreate update")
		case ready && count.ready-1 >= minReady:
			count.ready--
			c.stop(in, "rolling update")
		case !ready:
			c.stop(in, "rolling update of an instance that is not ready")
		case holdsWantedPort(in, wantsPort, held) && count.unreadyCurrent == 0:
			count.ready--
			count.unreadyCurrent++ // one at a time: the new one must be ready first
			c.stop(in, "rolling update: its host port is needed by the new version")
		}
	}
}

// portsWanted returns the ports of this node's not yet started assignments of a workload.
func (c *core) portsWanted(k workloadKey, hash string) map[spec.HostPort]bool {
	want := map[spec.HostPort]bool{}
	for _, as := range c.mine {
		if as.w.key == k && as.SpecHash == hash && c.instances[as.InstanceID] == nil {
			for _, p := range as.w.hostPorts {
				want[p] = true
			}
		}
	}
	return want
}

func holdsWantedPort(in *instance, want map[spec.HostPort]bool, held map[spec.HostPort]*instance) bool {
	for p := range want {
		if held[p] == in {
			return true
		}
	}
	return false
}

// ensure starts an assignment of this node when its turn has come, or retries a failed start.
func (c *core) ensure(as assignment, count *workloadCount, held map[spec.HostPort]*instance) {
	if in := c.instances[as.InstanceID]; in != nil {
		if !in.created && !in.busy && !in.stopping && !in.retryAt.After(c.now) {
			c.start(in, as.w)
		}
		return
	}
	if ro := c.rollout(as.w.key); ro != nil {
		if ro.Strategy == spec.StrategyRecreate && len(ro.Outdated) > 0 {
			return // Recreate: the old ones go first
		}
		running := 0
		if count != nil {
			running = count.running
		}
		if running >= ro.Replicas+ro.MaxSurge {
			return // surge budget used up; wait for an old one to stop
		}
	}
	ports := as.w.hostPorts
	for _, p := range ports {
		if holder := held[p]; holder != nil && holder.id != as.InstanceID {
			return // wait until the holder stops (rollOut or the plan's stops decide when)
		}
	}
	in := as.w.newRecord(as.InstanceID, as.w.commit, &c.cfg)
	in.podNetwork = c.podNetwork(as.w)
	c.instances[in.id] = in
	if count != nil {
		count.running++
		count.unreadyCurrent++
	}
	for _, p := range ports {
		held[p] = in
	}
	c.start(in, as.w)
}

func (c *core) rollout(k workloadKey) *planner.Rollout {
	for i := range c.placement.Rollouts {
		if ro := &c.placement.Rollouts[i]; ro.Namespace == k.namespace && ro.Workload == k.name {
			return ro
		}
	}
	return nil
}

// start resolves the instance against its compiled workload and asks for it to start; a
// spec that does not resolve fails the start at once.
func (c *core) start(in *instance, w *compiled) {
	if in.podNetwork && !c.instanceAddr(in) {
		return // no address yet: tried again when the subnet comes
	}
	s, err := c.resolve(in, w)
	in.busy, in.changed = true, c.now
	if err != nil {
		c.onResult(resultEvent{kind: actionStart, id: in.id, err: fmt.Errorf("%w: %w", executor.ErrConfig, err)})
		return
	}
	in.spec = &s
	c.startStage(in)
}

// startStage asks for a Start of the instance's current stage: its first init container,
// the next one once those before it are done, then the app containers. The executor
// leaves what exists alone, so init containers that completed are not run again.
func (c *core) startStage(in *instance) {
	s := *in.spec
	s.Stage = in.stage()
	in.busy, in.changed, in.starting = true, c.now, s.Stage
	c.rd.starts = append(c.rd.starts, s)
}

// advance starts the next stage of an instance whose init containers moved on: one
// completed, or a sidecar started. A stage that failed is tried again after its backoff.
func (c *core) advance(in *instance) {
	if !in.created || in.busy || in.stopping || in.spec == nil || in.retryAt.After(c.now) || in.allCreated() {
		return
	}
	c.startStage(in)
}

// resolve is the executor's spec of an instance of w.
func (c *core) resolve(in *instance, w *compiled) (executor.InstanceSpec, error) {
	s, err := executor.Resolve(w.set, w.d, in.id, c.cfg.NodeName, in.revision, c.resolveOptions(in)...)
	s.GracePeriod = w.grace
	s.Addr = in.addr
	return s, err
}

// stop asks for a graceful stop of the instance, once no other action runs on it.
func (c *core) stop(in *instance, reason string) {
	if in.busy || in.stopping {
		return
	}
	var drain time.Duration
	if in.podNetwork && in.phase(c.now) == PhaseReady {
		drain = c.cfg.Network.EndpointDrain // it is in Services' rotation: let every node take it out first
	}
	in.stopping, in.busy, in.changed = true, true, c.now
	c.stopProbes(in)
	c.log.Info("stopping instance", "instance", in.id, "reason", reason)
	if !in.created {
		in.busy = false
		c.forget(in) // nothing runs: a failed start leaves nothing behind
		return
	}
	c.rd.stops = append(c.rd.stops, stopAction{id: in.id, grace: in.grace, drain: drain})
}

// restartDue restarts the containers of an instance whose crash backoff is over.
func (c *core) restartDue(in *instance) {
	if !in.created || in.busy || in.stopping {
		return
	}
	for _, name := range in.order {
		ct := in.containers[name]
		if ct.restartAt.IsZero() || ct.restartAt.After(c.now) {
			continue
		}
		in.busy, in.changed = true, c.now
		c.rd.restarts = append(c.rd.restarts, restartAction{in.id, ct.name})
		return // one action per instance at a time
	}
}

// instanceIDs are the IDs of this node's instances, sorted: the core decides in the same
// order however the records are stored, so that the same events give the same Ready.
func (c *core) instanceIDs() []string {
	ids := make([]string, 0, len(c.instances))
	for id := range c.instances {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
