package agent

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// Phase is what status says about an instance, in Kubernetes' words where they exist.
type Phase string

// Instance phases.
const (
	// PhasePending is an instance the plan wants here that waits for its turn (rollout pacing).
	PhasePending Phase = "Pending"
	// PhaseStarting is an instance whose image pull, create and start are under way.
	PhaseStarting Phase = "Starting"
	// PhaseRunning is an instance whose containers run but that is not ready yet
	// (minReadySeconds not reached, or a container restarting).
	PhaseRunning Phase = "Running"
	// PhaseReady is an instance that runs and is counted as available.
	PhaseReady Phase = "Ready"
	// PhaseCrashLoop is an instance with a container waiting out its crash backoff.
	PhaseCrashLoop Phase = "CrashLoopBackOff"
	// PhaseImagePullBackOff is an instance whose image could not be pulled; it is retried with backoff.
	PhaseImagePullBackOff Phase = "ImagePullBackOff"
	// PhaseConfigError is an instance whose ConfigMap/Secret references cannot be resolved.
	PhaseConfigError Phase = "CreateContainerConfigError"
	// PhaseForbidden is an instance asking for what this node does not allow (privileged,
	// a host namespace or path); the message names the agent flag that would allow it.
	PhaseForbidden Phase = "Forbidden"
	// PhaseStartError is an instance whose start failed for another reason; it is retried with backoff.
	PhaseStartError Phase = "StartError"
	// PhaseTerminating is an instance being stopped.
	PhaseTerminating Phase = "Terminating"
	// PhaseInit is an instance whose init containers have not all completed (or, for
	// sidecars, started). Status shows it as kubectl does: "Init:1/2" (one of two done),
	// "Init:CrashLoopBackOff" (an init container waits out its crash backoff), or
	// "Init:" and the start error; metrics count them all as Init.
	PhaseInit Phase = "Init"
)

// initPhase is the status phase of an instance waiting on its init containers: detail
// is "k/n" or a reason.
func initPhase(detail string) Phase { return PhaseInit + ":" + Phase(detail) }

// kind is the phase without its detail: PhaseInit for every "Init:…" phase.
func (p Phase) kind() Phase {
	if strings.HasPrefix(string(p), string(PhaseInit)+":") {
		return PhaseInit
	}
	return p
}

// phases lists every Phase, for metrics that export each one, at 0 when empty.
var phases = []Phase{
	PhasePending, PhaseStarting, PhaseRunning, PhaseReady, PhaseCrashLoop, PhaseImagePullBackOff,
	PhaseConfigError, PhaseForbidden, PhaseStartError, PhaseTerminating, PhaseInit,
}

// instance is the core's record of one instance on this node.
type instance struct {
	id, namespace, workload string
	specHash, revision      string
	grace                   time.Duration
	minReady                time.Duration

	// created is true while the runtime holds the instance's containers.
	created bool
	// busy is true while an action on the instance is in flight.
	busy bool
	// stopping is true once the agent decided to stop it; it is never started again.
	stopping bool
	// startErr is the phase and message of the last failed start; retryAt the next attempt.
	startErr     Phase
	message      string
	startBackoff executor.Backoff
	retryAt      time.Time
	// startFailures counts the failed starts since the last one that succeeded.
	startFailures int
	// runningSince is when every container last ran; the instance is ready minReady later.
	runningSince time.Time
	// changed is when the loop last changed the record; a runtime listing taken before
	// that is stale for this record.
	changed    time.Time
	containers map[string]*container
	// order names the containers in the order they start: init containers, then app
	// containers. For an adopted instance it is complete once spec is known.
	order []string
	// starting is how many containers of order the start in flight starts (its Stage).
	starting int
	// spec is what the instance was started from (or, once adopted, resolved again);
	// nil until known. The prober needs it.
	spec *executor.InstanceSpec
	// probing is true while the shell runs a prober for the instance.
	probing bool
	// podNetwork is true when the instance has a network of its own, at addr (from this
	// node's pod subnet); otherwise it runs on the node's network and addr is invalid.
	podNetwork bool
	addr       netip.Addr
}

// container is the loop's record of one container of an instance.
type container struct {
	name, image string
	status      executor.Status
	pid         uint32
	restarts    int
	lastExit    string
	startedAt   time.Time
	backoff     executor.Backoff
	// restartAt is when a restart is due; zero when none is scheduled.
	restartAt time.Time
	// ready is what the readiness (and startup) probes last said; true without probes.
	ready bool
	// readyChanged is when a probe last changed ready.
	readyChanged time.Time
	// hasReadiness and hasStartup say which gating probes the container has.
	hasReadiness, hasStartup bool
	// init is the container's place (from 1) among the init containers, 0 for an app
	// container; sidecar marks an init container that keeps running.
	init    int
	sidecar bool
	// created is true once the runtime holds the container: it started at least once.
	created bool
	// initDone is true once an init container let the next one start: a regular one
	// exited 0, a sidecar started (and passed its startup probe). It never goes back:
	// init containers do not run again for an instance that exists, as in Kubernetes.
	initDone bool
}

// completes reports whether the container runs to completion: an init container that
// is not a sidecar.
func (c *container) completes() bool { return c.init > 0 && !c.sidecar }

// completed reports whether the container ran to completion and stays exited.
func (c *container) completed() bool { return c.completes() && c.initDone }

// phase derives the status phase from the record at time now.
func (in *instance) phase(now time.Time) Phase {
	switch {
	case in.stopping:
		return PhaseTerminating
	case !in.created && in.busy:
		return PhaseStarting
	case !in.created && in.startErr != "":
		if _, total := in.initProgress(); total > 0 {
			return initPhase(string(in.startErr)) // its first init container could not start
		}
		return in.startErr
	case !in.created:
		return PhasePending
	}
	if done, total := in.initProgress(); done < total {
		for _, c := range in.containers {
			if c.init > 0 && !c.restartAt.IsZero() && c.restartAt.After(now) {
				return initPhase(string(PhaseCrashLoop))
			}
		}
		if in.startErr != "" {
			return initPhase(string(in.startErr))
		}
		return initPhase(fmt.Sprintf("%d/%d", done, total))
	}
	for _, c := range in.containers {
		if !c.restartAt.IsZero() && c.restartAt.After(now) {
			return PhaseCrashLoop
		}
	}
	if in.startErr != "" && !in.allCreated() {
		return in.startErr // an app container that could not be created
	}
	if !in.allRunning() {
		return PhaseRunning
	}
	if in.readyAt().After(now) || !in.probesReady() {
		return PhaseRunning
	}
	return PhaseReady
}

// allRunning reports whether every container runs but the init containers that completed.
func (in *instance) allRunning() bool {
	for _, c := range in.containers {
		if c.status != executor.StatusRunning && !c.completed() {
			return false
		}
	}
	return len(in.containers) > 0
}

// initProgress is how many of the instance's init containers are done, counted in their
// order, and how many it has.
func (in *instance) initProgress() (done, total int) {
	counting := true
	for _, name := range in.order {
		c := in.containers[name]
		if c.init == 0 {
			break
		}
		total++
		if counting && c.initDone {
			done++
		} else {
			counting = false
		}
	}
	return done, total
}

// stage is how many containers of order should exist now: the init containers done and
// the next one, or every container once the init containers are done.
func (in *instance) stage() int {
	if done, total := in.initProgress(); done < total {
		return done + 1
	}
	return len(in.order)
}

// allCreated reports whether every container the stage asks for was started. An init
// container that completed counts whatever became of its task: it never runs again.
func (in *instance) allCreated() bool {
	for _, name := range in.order[:in.stage()] {
		if c := in.containers[name]; !c.created && !c.completed() {
			return false
		}
	}
	return true
}

// probesReady reports whether every container's readiness (and startup) probe passes.
func (in *instance) probesReady() bool {
	for _, c := range in.containers {
		if !c.ready {
			return false
		}
	}
	return true
}

// readyAt is when a running instance becomes ready; zero when it does not run.
func (in *instance) readyAt() time.Time {
	if in.runningSince.IsZero() {
		return time.Time{}
	}
	return in.runningSince.Add(in.minReady)
}

// restarts is the sum of the containers' restarts.
func (in *instance) restarts() int {
	n := 0
	for _, c := range in.containers {
		n += c.restarts
	}
	return n
}

// lastExit is how a container of the instance last exited, "" when none did.
func (in *instance) lastExit() string {
	for _, name := range in.order {
		if c := in.containers[name]; c != nil && c.lastExit != "" {
			return c.lastExit
		}
	}
	return ""
}

// nextWake is the earliest time at which the record changes phase by itself; zero if never.
func (in *instance) nextWake(now time.Time) time.Time {
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if !in.busy && !in.stopping && (!in.created || !in.allCreated()) {
		earliest(in.retryAt) // a start, or the start of a later stage, to try again
	}
	if !in.busy { // a restart in flight reports back on its own
		for _, c := range in.containers {
			earliest(c.restartAt)
		}
	}
	if r := in.readyAt(); r.After(now) {
		earliest(r)
	}
	return at
}

// exitReason says how a container ended, as kubectl shows it.
func exitReason(code int, oom bool) string {
	switch {
	case oom:
		return fmt.Sprintf("OOMKilled (exit %d)", code)
	case code == 0:
		return "Completed (exit 0)"
	default:
		return fmt.Sprintf("Error (exit %d)", code)
	}
}

// fromState builds a record for an instance found in the runtime (adoption).
func fromState(s executor.InstanceState, now time.Time, crash executor.Backoff) *instance {
	in := &instance{
		id: s.ID, namespace: s.Namespace, workload: s.Workload,
		specHash: s.SpecHash, revision: s.Revision, grace: s.GracePeriod,
		created: true, changed: now, containers: map[string]*container{},
		podNetwork: s.Addr.IsValid(), addr: s.Addr,
	}
	for _, cs := range s.Containers {
		in.containers[cs.Name] = &container{name: cs.Name, image: cs.Image, init: cs.Init, sidecar: cs.Sidecar, backoff: crash, ready: true}
		in.order = append(in.order, cs.Name)
	}
	// Init containers first, in order; then the app containers, sorted by name.
	slices.SortStableFunc(in.order, func(a, b string) int {
		ia, ib := in.containers[a].init, in.containers[b].init
		return cmp.Compare(cmp.Or(ia, math.MaxInt), cmp.Or(ib, math.MaxInt))
	})
	in.apply(s, now)
	for _, c := range in.containers {
		if c.sidecar && c.status == executor.StatusRunning {
			c.initDone = true // it started before the agent did; its startup probe is not asked again
		}
	}
	in.markInitDone()
	return in
}

// completeOrder adds the containers of s that the record lacks (an adopted instance
// whose later containers were not created yet) and takes s's order.
func (in *instance) completeOrder(s *executor.InstanceSpec, crash executor.Backoff) {
	in.order = in.order[:0]
	for _, cs := range s.Containers {
		if in.containers[cs.Name] == nil {
			in.containers[cs.Name] = &container{name: cs.Name, image: cs.Image, init: cs.Init, sidecar: cs.Sidecar, backoff: crash, ready: true}
		}
		in.order = append(in.order, cs.Name)
	}
	in.markInitDone()
}

// markInitDone marks as done the init containers of an instance found in the runtime
// that a later container proves were done: one that exists started after them. A
// restarted agent so never runs an init container again.
func (in *instance) markInitDone() {
	later := false
	for i := len(in.order) - 1; i >= 0; i-- {
		c := in.containers[in.order[i]]
		if c.init > 0 && later {
			c.initDone = true
		}
		later = later || c.created
	}
}

// apply merges what the runtime reports into the record and reports the containers
// found exited without a restart scheduled (an event the loop missed).
func (in *instance) apply(s executor.InstanceState, now time.Time) (exited []executor.ContainerState) {
	for _, cs := range s.Containers {
		c, ok := in.containers[cs.Name]
		if !ok {
			continue
		}
		c.status, c.pid = cs.Status, cs.PID
		if cs.Restarts > c.restarts {
			c.restarts = cs.Restarts
		}
		if c.startedAt.IsZero() {
			c.startedAt = now
		}
		// A container without a task was created but never started (a Start cut short):
		// advance starts it with its stage, as Start starts what has no task.
		c.created = c.created || cs.Status != executor.StatusNoTask
		switch {
		case cs.Status != executor.StatusExited || !c.restartAt.IsZero() || c.completed():
		case c.completes() && cs.ExitCode == 0 && !cs.OOMKilled:
			c.initDone = true // an init container ran to completion, and no event said so
		default:
			exited = append(exited, cs)
		}
	}
	if in.allRunning() {
		if in.runningSince.IsZero() {
			in.runningSince = now
		}
	} else {
		in.runningSince = time.Time{}
	}
	return exited
}
