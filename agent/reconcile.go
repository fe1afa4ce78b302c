package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
)

// reconcile plans and hands out the actions that move this node towards its share of the
// plan. It is cheap when nothing changed: every action is guarded by the record's state.
func (a *Agent) reconcile(ctx context.Context, now time.Time) {
	if !a.adopted || a.desired == nil {
		return // adopt before starting anything; never stop anything without a desired state
	}
	if why := a.joinError(); why != a.notJoined {
		if why != "" {
			a.log.Warn("not part of the cluster this node was told to join: running nothing until it joins", "err", why)
		} else {
			a.log.Info("joined the cluster")
		}
		a.notJoined = why
	}
	if a.notJoined != "" {
		return // planning alone would duplicate the cluster's workloads
	}
	view := a.view()
	a.placement = a.planner.Plan(*a.desired, view)
	a.planInputs.Store(&PlanInputs{Desired: *a.desired, View: view})
	a.stageOnce("planned", now)
	counts := countWorkloads(view)
	for _, in := range a.instances {
		if in.stopping { // still running until its stop returns: it counts against maxSurge
			if c := counts[workloadKey{in.namespace, in.workload}]; c != nil {
				c.running++
			}
		}
	}

	for _, s := range a.placement.StopsOn(a.cfg.NodeName) {
		if in := a.instances[s.Instance.ID]; in != nil {
			a.stop(ctx, in, s.Reason)
		}
	}
	blocked := a.portHolders()
	for _, ro := range a.placement.Rollouts {
		a.rollOut(ctx, ro, counts[workloadKey{ro.Namespace, ro.Workload}], blocked)
	}
	for _, as := range a.placement.ForNode(a.cfg.NodeName) {
		a.ensure(ctx, as, counts[workloadKey{as.Namespace, as.Workload}], blocked, now)
	}
	// Restarts come after the plan's stops: an instance adopted after the agent restarted
	// with stricter permissions is stopped (the plan does not keep it on a node that
	// refuses it) before a crash of it could be restarted in place, which the executor
	// does not check again.
	for _, in := range a.instances {
		a.restartDue(ctx, in, now)
		a.ensureProbes(ctx, in)
	}
	a.trackConvergence(now)
}

// view is the cluster as this node sees it: the members and instances gossip reports,
// and itself with its own instances as the loop knows them.
func (a *Agent) view() planner.View {
	var v planner.View
	v.Nodes, v.Instances = a.clusterView()
	v.Nodes = append(v.Nodes, a.cfg.node())
	for _, in := range a.instances {
		if in.stopping {
			continue
		}
		v.Instances = append(v.Instances, planner.Instance{
			ID: in.id, Namespace: in.namespace, Workload: in.workload, Node: a.cfg.NodeName,
			SpecHash: in.specHash, Ready: in.phase(time.Now()) == PhaseReady, Running: in.created || in.busy,
		})
	}
	return v
}

type workloadKey struct{ namespace, name string }

// workloadCount is what rollout pacing needs to know of one workload across the cluster.
type workloadCount struct {
	running int // instances that run or start, of any spec
	ready   int // instances counted as available, of any spec
	// unreadyCurrent counts instances of the current spec that run but are not ready yet.
	unreadyCurrent map[string]int // by spec hash
}

func countWorkloads(v planner.View) map[workloadKey]*workloadCount {
	out := map[workloadKey]*workloadCount{}
	for _, in := range v.Instances {
		k := workloadKey{in.Namespace, in.Workload}
		c := out[k]
		if c == nil {
			c = &workloadCount{unreadyCurrent: map[string]int{}}
			out[k] = c
		}
		if in.Running {
			c.running++
			if !in.Ready {
				c.unreadyCurrent[in.SpecHash]++
			}
		}
		if in.Ready {
			c.ready++
		}
	}
	return out
}

// portHolders maps each host port in use on this node to the instance holding it.
func (a *Agent) portHolders() map[spec.HostPort]*instance {
	held := map[spec.HostPort]*instance{}
	for _, in := range a.instances {
		if in.created || in.busy {
			for _, p := range a.portsOf(in.namespace, in.workload) {
				held[p] = in
			}
		}
	}
	return held
}

// portsOf returns the host ports a workload's instances take, from the desired state.
func (a *Agent) portsOf(namespace, workload string) []spec.HostPort {
	d := a.desired.Objects.Deployment(namespace, workload)
	if d == nil {
		return nil
	}
	return d.Spec.Template.Spec.HostPorts()
}

// rollOut stops this node's outdated instances of a workload as fast as its strategy
// allows: all at once for Recreate; for RollingUpdate while enough instances stay ready
// (replicas − maxUnavailable), or, where an old instance holds a host port a new one
// needs, old before new, one at a time.
func (a *Agent) rollOut(ctx context.Context, ro planner.Rollout, count *workloadCount, held map[spec.HostPort]*instance) {
	if count == nil {
		return
	}
	minReady := ro.Replicas - ro.MaxUnavailable
	wantsPort := a.portsWanted(ro.Namespace, ro.Workload, ro.SpecHash)
	for _, old := range ro.Outdated {
		in := a.instances[old.ID]
		if old.Node != a.cfg.NodeName || in == nil || in.busy || in.stopping {
			continue
		}
		switch {
		case ro.Strategy == spec.StrategyRecreate:
			a.stop(ctx, in, "Recreate update")
		case old.Ready && count.ready-1 >= minReady:
			count.ready--
			a.stop(ctx, in, "rolling update")
		case !old.Ready:
			a.stop(ctx, in, "rolling update of an instance that is not ready")
		case a.holdsWantedPort(in, wantsPort, held) && count.unreadyCurrent[ro.SpecHash] == 0:
			count.ready--
			count.unreadyCurrent[ro.SpecHash]++ // one at a time: the new one must be ready first
			a.stop(ctx, in, "rolling update: its host port is needed by the new version")
		}
	}
}

// portsWanted returns the ports of this node's not yet started assignments of a workload.
func (a *Agent) portsWanted(namespace, workload, hash string) map[spec.HostPort]bool {
	want := map[spec.HostPort]bool{}
	for _, as := range a.placement.ForNode(a.cfg.NodeName) {
		if as.Namespace == namespace && as.Workload == workload && as.SpecHash == hash && a.instances[as.InstanceID] == nil {
			for _, p := range a.portsOf(namespace, workload) {
				want[p] = true
			}
		}
	}
	return want
}

func (a *Agent) holdsWantedPort(in *instance, want map[spec.HostPort]bool, held map[spec.HostPort]*instance) bool {
	for p := range want {
		if held[p] == in {
			return true
		}
	}
	return false
}

// ensure starts an assignment of this node when its turn has come, or retries a failed start.
func (a *Agent) ensure(ctx context.Context, as planner.Assignment, count *workloadCount, held map[spec.HostPort]*instance, now time.Time) {
	if in := a.instances[as.InstanceID]; in != nil {
		if !in.created && !in.busy && !in.stopping && !in.retryAt.After(now) {
			a.start(ctx, in, now)
		}
		return
	}
	if ro := a.rollout(as.Namespace, as.Workload); ro != nil {
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
	for _, p := range a.portsOf(as.Namespace, as.Workload) {
		if holder := held[p]; holder != nil && holder.id != as.InstanceID {
			return // wait until the holder stops (rollOut or the plan's stops decide when)
		}
	}
	d := a.desired.Objects.Deployment(as.Namespace, as.Workload)
	in := &instance{
		id: as.InstanceID, namespace: as.Namespace, workload: as.Workload,
		specHash: as.SpecHash, revision: a.desired.Revision.Commit,
		grace:        gracePeriod(d),
		minReady:     time.Duration(d.Spec.MinReadySeconds) * time.Second,
		startBackoff: a.cfg.StartBackoff,
		containers:   map[string]*container{},
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		in.containers[c.Name] = &container{name: c.Name, image: c.Image, backoff: a.cfg.CrashBackoff, ready: true}
	}
	a.instances[in.id] = in
	if count != nil {
		count.running++
		count.unreadyCurrent[as.SpecHash]++
	}
	for _, p := range a.portsOf(as.Namespace, as.Workload) {
		held[p] = in
	}
	a.start(ctx, in, now)
}

func (a *Agent) rollout(namespace, workload string) *planner.Rollout {
	for i := range a.placement.Rollouts {
		if ro := &a.placement.Rollouts[i]; ro.Namespace == namespace && ro.Workload == workload {
			return ro
		}
	}
	return nil
}

// start resolves the instance against the desired state and hands it to a worker.
func (a *Agent) start(ctx context.Context, in *instance, now time.Time) {
	d := a.desired.Objects.Deployment(in.namespace, in.workload)
	spec, err := executor.Resolve(a.desired.Objects, d, in.id, a.cfg.NodeName, in.revision, a.resolveOptions(in.namespace)...)
	if err == nil {
		spec.GracePeriod = in.grace
		in.spec = &spec
	}
	in.busy, in.changed = true, now
	a.dispatch(ctx, func(ctx context.Context) result {
		if err != nil {
			return result{kind: actionStart, id: in.id, err: fmt.Errorf("%w: %w", executor.ErrConfig, err)}
		}
		for _, c := range spec.Containers {
			if err := a.rt.EnsureImage(ctx, c.Image, c.PullPolicy); err != nil {
				return result{kind: actionStart, id: spec.ID, err: err}
			}
		}
		pulled := time.Now()
		return result{kind: actionStart, id: spec.ID, err: a.rt.Start(ctx, spec), pulled: pulled}
	})
}

// stop hands the instance to a worker for a graceful stop, once no other action runs on it.
func (a *Agent) stop(ctx context.Context, in *instance, reason string) {
	if in.busy || in.stopping {
		return
	}
	in.stopping, in.busy, in.changed = true, true, time.Now()
	a.stopProbes(in)
	a.log.Info("stopping instance", "instance", in.id, "reason", reason)
	if !in.created {
		in.busy = false
		a.forget(in) // nothing runs: a failed start leaves nothing behind
		return
	}
	id, grace := in.id, in.grace
	a.dispatch(ctx, func(ctx context.Context) result {
		return result{kind: actionStop, id: id, err: a.rt.Stop(ctx, id, grace)}
	})
}

// restartDue restarts the containers of an instance whose crash backoff is over.
func (a *Agent) restartDue(ctx context.Context, in *instance, now time.Time) {
	if !in.created || in.busy || in.stopping {
		return
	}
	for _, c := range in.containers {
		if c.restartAt.IsZero() || c.restartAt.After(now) {
			continue
		}
		in.busy, in.changed = true, now
		id, name := in.id, c.name
		a.dispatch(ctx, func(ctx context.Context) result {
			return result{kind: actionRestart, id: id, container: name, err: a.rt.Restart(ctx, id, name)}
		})
		return // one action per instance at a time
	}
}

func gracePeriod(d *spec.Deployment) time.Duration {
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}
