package agent

import (
	"context"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// startProbes runs the instance's probes, when it has any, reporting to the loop.
func (a *Agent) startProbes(ctx context.Context, in *instance, spec executor.InstanceSpec) {
	for _, cs := range spec.Containers {
		c := in.containers[cs.Name]
		if c == nil {
			continue
		}
		c.hasReadiness, c.hasStartup = false, false
		for _, p := range cs.Probes {
			c.hasReadiness = c.hasReadiness || p.Kind == executor.ProbeReadiness
			c.hasStartup = c.hasStartup || p.Kind == executor.ProbeStartup
		}
		c.ready = !c.hasReadiness && !c.hasStartup // until the probes say so
	}
	p, err := executor.StartProber(ctx, a.rt, spec, a.cfg.NodeAddr, a.probeResults)
	if err != nil {
		a.log.Error("probes not started", "instance", in.id, "err", err)
		return
	}
	in.prober = p
}

// ensureProbes starts the probes of an instance that runs without them: one adopted from
// the runtime, once the desired state says what it runs.
func (a *Agent) ensureProbes(ctx context.Context, in *instance) {
	if in.spec != nil || !in.created || in.stopping || in.specHash == "" {
		return
	}
	d := a.desired.Objects.Deployment(in.namespace, in.workload)
	if d == nil || a.hashes[workloadKey{in.namespace, in.workload}] != in.specHash {
		return // not what the desired state runs: the plan replaces it
	}
	s, err := executor.Resolve(a.desired.Objects, d, in.id, a.cfg.NodeName, in.revision, a.resolveOptions(in.namespace)...)
	if err != nil {
		return
	}
	in.spec = &s
	a.startProbes(ctx, in, s)
}

// stopProbes ends the instance's prober without making the loop wait for checks in flight.
func (a *Agent) stopProbes(in *instance) {
	if in.prober == nil {
		return
	}
	p := in.prober
	in.prober = nil
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		p.Stop()
	}()
}

// forget drops the record of an instance that no longer exists.
func (a *Agent) forget(in *instance) {
	a.stopProbes(in)
	delete(a.instances, in.id)
}

// onProbe takes in a probe verdict: readiness moves the instance in and out of Ready
// (and so of DNS and rollout counts); a failed liveness or startup probe restarts the
// container on the crash backoff, as a crash would.
func (a *Agent) onProbe(r executor.ProbeResult, now time.Time) {
	in := a.instances[r.InstanceID]
	if in == nil || in.stopping {
		return
	}
	c := in.containers[r.Container]
	if c == nil {
		return
	}
	in.changed = now
	switch r.Kind {
	case executor.ProbeReadiness:
		c.ready, c.readyChanged = r.Healthy, r.Time
		if !r.Healthy && r.Message != "" {
			a.log.Info("readiness probe failed", "instance", in.id, "container", c.name, "reason", r.Message)
		}
	case executor.ProbeStartup:
		if r.Healthy {
			c.ready = !c.hasReadiness // the readiness probe, if any, decides from now on
			return
		}
		fallthrough
	case executor.ProbeLiveness:
		if r.Healthy || !c.restartAt.IsZero() {
			return
		}
		a.log.Warn("probe failed; restarting the container", "instance", in.id, "container", c.name, "probe", r.Kind, "reason", r.Message)
		a.crashed(in, c, -1, false, now, now)
		c.lastExit = string(r.Kind) + " probe failed: " + r.Message
	}
}
