package executor

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ProbeResult is a change of a probe's verdict, as a Prober reports it.
type ProbeResult struct {
	InstanceID string
	Container  string
	Kind       ProbeKind
	// Healthy is the new verdict: for readiness, ready; for liveness and startup, false
	// means the container must be restarted, and a startup probe reports true once, when
	// it succeeds.
	Healthy bool
	// Message says why an unhealthy verdict came: the last failed check's error.
	Message string
	// Time is when the check that changed the verdict ended.
	Time time.Time
}

// Prober runs the probes of one instance's containers in one goroutine and reports the
// changes of their verdicts. StartProber starts it; Stop, or the end of the context given
// to StartProber, ends it.
//
// It reports, on the caller's channel:
//   - at start, readiness=false for every container with a readiness probe;
//   - then every change of a verdict (see ProbeTracker), for example liveness=false after
//     FailureThreshold failed checks, or readiness=true after SuccessThreshold good ones.
//
// A container without probes gets no reports: the caller treats it as ready and alive.
// When the caller restarts a container, it calls RestartContainer, which starts that
// container's probes over (initial delay, startup probe first) and reports the verdicts
// this changes; a liveness or startup probe that failed checks no more until then. Checks
// of a container that is not running fail (ErrNotRunning, refused connections), so a
// container that crashed may also be reported not alive: the caller, which sees the exit
// as an Event, restarts it once either way.
//
// Probes of a restarted container could instead be started over by stopping the Prober
// and starting a new one, but that would also start the instance's other containers'
// probes over (not ready until probed again).
//
// Initial delays count from StartProber (or RestartContainer), not from the container's
// start: for an adopted instance, probes begin after a full initial delay.
type Prober struct {
	cancel   context.CancelFunc
	done     chan struct{}
	restarts chan string
}

// proberRun is the state of a Prober's goroutine, which alone touches it.
type proberRun struct {
	rt         Runtime
	instanceID string
	addr       string
	out        chan<- ProbeResult
	containers []*probedContainer
	// results brings back the outcome of checks, each run in a goroutine of its own so
	// that a slow check of one probe does not delay the others.
	results chan checkOutcome
	checks  sync.WaitGroup
	// queue holds reports not yet taken by out; the goroutine never blocks on out, so
	// RestartContainer and check results are always taken.
	queue []ProbeResult
}

// probedContainer is one container with probes, with the checks in flight for it.
type probedContainer struct {
	spec   *ContainerSpec
	probes *containerProbes
	// generation counts RestartContainer calls: outcomes of checks started before the
	// last one are stale.
	generation int
	// inFlight holds the cancel function of the running check of each probe, nil when
	// none runs.
	inFlight []context.CancelFunc
}

// checkOutcome is the outcome of one check, sent back to the Prober's goroutine.
type checkOutcome struct {
	container, probe, generation int
	at                           time.Time
	took                         time.Duration
	err                          error
}

// StartProber starts probing the containers of spec that have probes, counting their
// initial delays from now. addr is the instance's address, which HTTP and TCP probes that
// name no host connect to; rt runs exec probes. Reports go to out, in order; the Prober
// queues them while out is not read, so it never blocks on out. Stop the Prober (or
// cancel ctx) when the instance stops. A spec that does not Validate is ErrInvalidSpec.
func StartProber(ctx context.Context, rt Runtime, spec InstanceSpec, addr string, out chan<- ProbeResult) (*Prober, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("executor: probe: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Prober{cancel: cancel, done: make(chan struct{}), restarts: make(chan string)}
	run := &proberRun{rt: rt, instanceID: spec.ID, addr: addr, out: out}
	now := time.Now()
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if len(c.Probes) == 0 {
			continue
		}
		pc := &probedContainer{spec: c, probes: newContainerProbes(c, now), inFlight: make([]context.CancelFunc, len(c.Probes))}
		run.containers = append(run.containers, pc)
		for _, t := range pc.probes.trackers {
			if t.spec.Kind == ProbeReadiness {
				run.report(c.Name, t, now)
			}
		}
	}
	run.results = make(chan checkOutcome, 1)
	go func() { // owned by p: Stop or ctx ends it
		defer close(p.done)
		run.loop(ctx, p.restarts)
	}()
	return p, nil
}

// RestartContainer starts the probes of the named container over, for a container that
// the caller has just restarted. A name without probes is ignored. It does not wait for
// the reports it causes, and returns at once after Stop.
func (p *Prober) RestartContainer(name string) {
	select {
	case p.restarts <- name:
	case <-p.done:
	}
}

// Stop ends the Prober and waits for its goroutine and checks to end. Reports not yet
// sent are dropped. It is idempotent.
func (p *Prober) Stop() {
	p.cancel()
	<-p.done
}

func (r *proberRun) loop(ctx context.Context, restarts <-chan string) {
	defer r.checks.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.startDueChecks(ctx, time.Now())
		if next, ok := r.nextCheck(); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
		var out chan<- ProbeResult // nil, so never ready, while nothing is queued
		var head ProbeResult
		if len(r.queue) > 0 {
			out, head = r.out, r.queue[0]
		}
		select {
		case <-ctx.Done():
			return
		case out <- head:
			r.queue = r.queue[1:]
		case <-timer.C:
		case o := <-r.results:
			r.record(o)
		case name := <-restarts:
			r.restart(name, time.Now())
		}
	}
}

// nextCheck is when the earliest check is due among the probes with no check in flight.
func (r *proberRun) nextCheck() (time.Time, bool) {
	var next time.Time
	found := false
	for _, c := range r.containers {
		for i, t := range c.probes.trackers {
			at, ok := t.Next()
			if ok && c.inFlight[i] == nil && (!found || at.Before(next)) {
				next, found = at, true
			}
		}
	}
	return next, found
}

// startDueChecks starts every check that is due by now and not in flight.
func (r *proberRun) startDueChecks(ctx context.Context, now time.Time) {
	for ci, c := range r.containers {
		for i, t := range c.probes.trackers {
			if at, ok := t.Next(); !ok || at.After(now) || c.inFlight[i] != nil {
				continue
			}
			checkCtx, cancel := context.WithCancel(ctx)
			c.inFlight[i] = cancel
			spec, name, generation := t.Spec(), c.spec.Name, c.generation
			r.checks.Add(1)
			go func() { // owned by the loop: it waits for every check before returning
				defer r.checks.Done()
				defer cancel()
				started := time.Now()
				err := Check(checkCtx, spec, r.addr, r.rt, r.instanceID, name)
				o := checkOutcome{container: ci, probe: i, generation: generation, at: started, took: time.Since(started), err: err}
				select {
				case r.results <- o:
				case <-ctx.Done():
				}
			}()
		}
	}
}

func (r *proberRun) record(o checkOutcome) {
	c := r.containers[o.container]
	if o.generation != c.generation {
		return // a check of the container before it restarted
	}
	c.inFlight[o.probe] = nil
	if c.probes.record(o.probe, o.at, o.took, o.err) {
		r.report(c.spec.Name, c.probes.trackers[o.probe], o.at.Add(o.took))
	}
}

// restart starts the probes of a restarted container over, cancelling its checks in
// flight, and reports the verdicts that this changes.
func (r *proberRun) restart(name string, now time.Time) {
	for _, c := range r.containers {
		if c.spec.Name != name {
			continue
		}
		for i, cancel := range c.inFlight {
			if cancel != nil {
				cancel()
				c.inFlight[i] = nil
			}
		}
		c.generation++
		before := c.probes
		c.probes = newContainerProbes(c.spec, now)
		for i, t := range c.probes.trackers {
			if v := t.Verdict(); v != ProbeUnknown && v != before.trackers[i].Verdict() {
				r.report(name, t, now)
			}
		}
	}
}

// report queues the verdict of t for out.
func (r *proberRun) report(container string, t *ProbeTracker, at time.Time) {
	r.queue = append(r.queue, ProbeResult{
		InstanceID: r.instanceID,
		Container:  container,
		Kind:       t.Spec().Kind,
		Healthy:    t.Verdict() == ProbeHealthy,
		Message:    t.Reason(),
		Time:       at,
	})
}
