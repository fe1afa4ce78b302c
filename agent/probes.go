package agent

import (
	"github.com/shoalhq/shoal/executor"
)

// startProbes asks for the instance's prober, from the spec it was started from.
func (c *core) startProbes(in *instance) {
	probeKinds(in, in.spec)
	in.probing = true
	c.rd.probes = append(c.rd.probes, probeOp{id: in.id, spec: in.spec})
}

// ensureProbes starts the probes of an instance that runs without them: one adopted from
// the runtime, once the desired state says what it runs.
func (c *core) ensureProbes(in *instance) {
	if in.spec != nil || !in.created || in.stopping || in.specHash == "" {
		return
	}
	w := c.workloads[workloadKey{in.namespace, in.workload}]
	if w == nil || w.hash != in.specHash {
		return // not what the desired state runs: the plan replaces it
	}
	s, err := c.resolve(in, w)
	if err != nil {
		return
	}
	s.GracePeriod = in.grace // as adopted
	in.spec = &s
	in.completeOrder(&s, c.cfg.CrashBackoff)
	c.startProbes(in)
}

// sidecarsStarted marks as done the sidecars that run and have no startup probe to
// pass: the next init container may start.
func (c *core) sidecarsStarted(in *instance) {
	for _, ct := range in.containers {
		if ct.sidecar && ct.created && !ct.hasStartup && ct.status == executor.StatusRunning {
			ct.initDone = true
		}
	}
}

// stopProbes asks for the instance's prober to end.
func (c *core) stopProbes(in *instance) {
	if in.probing {
		in.probing = false
		c.rd.probes = append(c.rd.probes, probeOp{id: in.id})
	}
}

// onProbe takes in a probe verdict: readiness moves the instance in and out of Ready
// (and so of DNS and rollout counts); a failed liveness or startup probe restarts the
// container on the crash backoff, as a crash would. A verdict plans again only when
// another node runs a copy of the instance: pacing reads readiness from the records.
func (c *core) onProbe(r executor.ProbeResult) {
	in := c.instances[r.InstanceID]
	if in == nil || in.stopping {
		return
	}
	ct := in.containers[r.Container]
	if ct == nil || !ct.created {
		return // not started yet (it waits on init containers): its probes start over when it does
	}
	in.changed = c.now
	if c.copiedElsewhere(in) {
		c.planDue = true // readiness decides which copy is kept
	}
	switch r.Kind {
	case executor.ProbeReadiness:
		ct.ready, ct.readyChanged = r.Healthy, r.Time
		if !r.Healthy && r.Message != "" {
			c.log.Info("readiness probe failed", "instance", in.id, "container", ct.name, "reason", r.Message)
		}
	case executor.ProbeStartup:
		if r.Healthy {
			ct.ready = !ct.hasReadiness // the readiness probe, if any, decides from now on
			if ct.sidecar && !ct.initDone {
				ct.initDone = true // the next init container may start
			}
			return
		}
		fallthrough
	case executor.ProbeLiveness:
		if r.Healthy || !ct.restartAt.IsZero() {
			return
		}
		c.log.Warn("probe failed; restarting the container", "instance", in.id, "container", ct.name, "probe", r.Kind, "reason", r.Message)
		c.crashed(in, ct, -1, false, c.now)
		ct.lastExit = string(r.Kind) + " probe failed: " + r.Message
	}
}

// copiedElsewhere reports whether another node runs a copy of the instance.
func (c *core) copiedElsewhere(in *instance) bool {
	for _, other := range c.remoteInstances(workloadKey{in.namespace, in.workload}) {
		if other.ID == in.id && other.Node != c.cfg.NodeName {
			return true
		}
	}
	return false
}
