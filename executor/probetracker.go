package executor

import (
	"errors"
	"fmt"
	"time"
)

// ProbeVerdict is what a probe has concluded so far.
type ProbeVerdict int

// Probe verdicts.
const (
	// ProbeUnknown is a probe with no verdict yet: a startup probe before it succeeds or fails.
	ProbeUnknown ProbeVerdict = iota
	// ProbeHealthy is a probe that succeeded SuccessThreshold times in a row, or a liveness
	// probe that has not failed yet.
	ProbeHealthy
	// ProbeUnhealthy is a probe that failed FailureThreshold times in a row, or a readiness
	// probe that has not succeeded yet.
	ProbeUnhealthy
)

// String names the verdict.
func (v ProbeVerdict) String() string {
	switch v {
	case ProbeHealthy:
		return "healthy"
	case ProbeUnhealthy:
		return "unhealthy"
	}
	return "unknown"
}

// ProbeTracker follows one probe of one container with Kubernetes' rules. It does no I/O
// and reads no clock: the caller asks Next when to check, runs the check, and tells Record
// when it started, how long it took and how it went.
//
//   - The first check comes InitialDelay after the container started, then one every Period.
//   - A check slower than Timeout fails, whatever it returned.
//   - SuccessThreshold successes in a row make the probe healthy, FailureThreshold
//     failures in a row unhealthy.
//   - Readiness starts unhealthy (not ready); liveness starts healthy and startup unknown,
//     for they only act on failure.
//   - A tracker created held (liveness and readiness behind a startup probe) does not
//     check until Release.
//   - A startup probe stops checking once it has succeeded. A liveness or startup probe
//     stops once it has failed: the container is about to be restarted, and a new
//     tracker starts with the new container.
type ProbeTracker struct {
	spec      ProbeSpec
	started   time.Time
	verdict   ProbeVerdict
	successes int // in a row
	failures  int // in a row
	next      time.Time
	held      bool
	finished  bool
	// reason is the last failure's error text, for a report of an unhealthy verdict.
	reason string
}

// NewProbeTracker returns the tracker of probe p of a container that started at started.
// held keeps it from checking until Release, for probes behind a startup probe.
func NewProbeTracker(p ProbeSpec, started time.Time, held bool) *ProbeTracker {
	t := &ProbeTracker{spec: p, started: started, held: held, next: started.Add(p.InitialDelay)}
	switch p.Kind {
	case ProbeReadiness:
		t.verdict, t.reason = ProbeUnhealthy, "not probed yet"
	case ProbeLiveness:
		t.verdict = ProbeHealthy
	}
	return t
}

// Spec returns the probe the tracker follows.
func (t *ProbeTracker) Spec() ProbeSpec { return t.spec }

// Verdict returns the probe's current verdict.
func (t *ProbeTracker) Verdict() ProbeVerdict { return t.verdict }

// Reason says why the probe is unhealthy: the last failed check's error. It is empty when
// the probe is not unhealthy.
func (t *ProbeTracker) Reason() string {
	if t.verdict != ProbeUnhealthy {
		return ""
	}
	return t.reason
}

// Next returns when the next check is due, and false when the tracker does not check
// (held, or finished).
func (t *ProbeTracker) Next() (time.Time, bool) {
	if t.held || t.finished {
		return time.Time{}, false
	}
	return t.next, true
}

// Release lets a held tracker check, from now on but not before its initial delay (which
// counts from the container's start, as in Kubernetes).
func (t *ProbeTracker) Release(now time.Time) {
	if !t.held {
		return
	}
	t.held = false
	if t.next.Before(now) {
		t.next = now
	}
}

// errSlowCheck is a check that returned after the probe's timeout.
var errSlowCheck = errors.New("check took longer than the timeout")

// Record takes the outcome of a check that started at `at` and took `took`: err is nil
// for a success. It reports whether the verdict changed. A tracker that does not check
// (see Next) ignores it.
func (t *ProbeTracker) Record(at time.Time, took time.Duration, err error) (changed bool) {
	if t.held || t.finished {
		return false
	}
	t.next = at.Add(t.spec.Period)
	if err == nil && took > t.spec.Timeout {
		err = fmt.Errorf("%w (%v > %v)", errSlowCheck, took, t.spec.Timeout)
	}
	before := t.verdict
	if err == nil {
		t.successes, t.failures = t.successes+1, 0
		if t.successes >= t.spec.SuccessThreshold {
			t.verdict = ProbeHealthy
		}
	} else {
		t.successes, t.failures = 0, t.failures+1
		t.reason = err.Error()
		if t.failures >= t.spec.FailureThreshold {
			t.verdict = ProbeUnhealthy
		}
	}
	switch {
	case t.spec.Kind == ProbeStartup && t.verdict != ProbeUnknown:
		t.finished = true // succeeded: the container has started; failed: it restarts
	case t.spec.Kind == ProbeLiveness && t.verdict == ProbeUnhealthy:
		t.finished = true
	}
	return t.verdict != before
}

// containerProbes are the trackers of one container's probes, with the startup probe
// holding the others back until it succeeds. Like ProbeTracker it is pure.
type containerProbes struct {
	trackers []*ProbeTracker // in the order of ContainerSpec.Probes
}

// newContainerProbes starts tracking the probes of c, which started at started.
func newContainerProbes(c *ContainerSpec, started time.Time) *containerProbes {
	hasStartup := false
	for _, p := range c.Probes {
		hasStartup = hasStartup || p.Kind == ProbeStartup
	}
	cp := &containerProbes{}
	for _, p := range c.Probes {
		cp.trackers = append(cp.trackers, NewProbeTracker(p, started, hasStartup && p.Kind != ProbeStartup))
	}
	return cp
}

// record gives tracker i the outcome of a check that started at `at` and took `took`,
// and reports whether its verdict changed. A startup probe that succeeds releases the
// others.
func (cp *containerProbes) record(i int, at time.Time, took time.Duration, err error) bool {
	t := cp.trackers[i]
	if !t.Record(at, took, err) {
		return false
	}
	if t.spec.Kind == ProbeStartup && t.verdict == ProbeHealthy {
		for _, other := range cp.trackers {
			other.Release(at.Add(took))
		}
	}
	return true
}
