package agent

import (
	"fmt"
	"net/netip"
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
)

// phases lists every Phase, for metrics that export each one, at 0 when empty.
var phases = []Phase{
	PhasePending, PhaseStarting, PhaseRunning, PhaseReady, PhaseCrashLoop, PhaseImagePullBackOff,
	PhaseConfigError, PhaseForbidden, PhaseStartError, PhaseTerminating,
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
	// runningSince is when every container last ran; the instance is ready minReady later.
	runningSince time.Time
	// changed is when the loop last changed the record; a runtime listing taken before
	// that is stale for this record.
	changed    time.Time
	containers map[string]*container
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
}

// phase derives the status phase from the record at time now.
func (in *instance) phase(now time.Time) Phase {
	switch {
	case in.stopping:
		return PhaseTerminating
	case !in.created && in.busy:
		return PhaseStarting
	case !in.created && in.startErr != "":
		return in.startErr
	case !in.created:
		return PhasePending
	}
	for _, c := range in.containers {
		if !c.restartAt.IsZero() && c.restartAt.After(now) {
			return PhaseCrashLoop
		}
	}
	if !in.allRunning() {
		return PhaseRunning
	}
	if in.readyAt().After(now) || !in.probesReady() {
		return PhaseRunning
	}
	return PhaseReady
}

func (in *instance) allRunning() bool {
	for _, c := range in.containers {
		if c.status != executor.StatusRunning {
			return false
		}
	}
	return len(in.containers) > 0
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

// nextWake is the earliest time at which the record changes phase by itself; zero if never.
func (in *instance) nextWake(now time.Time) time.Time {
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if !in.created && !in.busy && !in.stopping {
		earliest(in.retryAt)
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
		in.containers[cs.Name] = &container{name: cs.Name, image: cs.Image, backoff: crash, ready: true}
	}
	in.apply(s, now)
	return in
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
		if cs.Status == executor.StatusExited && c.restartAt.IsZero() {
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
