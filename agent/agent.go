package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/spec"
	"github.com/shoalhq/shoal/sync"
)

// Agent reconciles one node. Create it with New and call Run once.
type Agent struct {
	cfg       Config
	rt        executor.Runtime
	planner   *planner.Planner
	log       *slog.Logger
	revisions <-chan sync.Event
	results   chan result
	// probeResults carries probe verdicts from the instances' probers to the loop.
	probeResults chan executor.ProbeResult
	sem          chan struct{}
	workers      gosync.WaitGroup
	status       atomic.Pointer[Status]
	planInputs   atomic.Pointer[PlanInputs] // what the last plan was computed from
	running      atomic.Bool
	cluster      Cluster   // nil: this node plans for itself alone
	dns          DNSConfig // zero: no DNS

	// Owned by the Run goroutine.
	desired   *spec.Desired
	hashes    map[workloadKey]string // spec hash of each desired Deployment, computed once per revision
	syncState SyncStatus
	timeline  []Stage
	applied   *spec.Revision
	instances map[string]*instance
	adopted   bool // the first runtime listing was applied
	listing   bool // a listing is in flight
	listDue   bool // another listing was asked for while one was in flight
	placement planner.Placement
	lastView  gossip.View // the gossip snapshot the last plan used
	notJoined string      // why this node runs nothing (Cluster.JoinError), "" when joined
	// What was last published to the cluster, to publish only changes.
	published     []gossip.InstanceInfo
	publishedMeta gossip.Meta
	dnsPublished  []dns.Service

	// marker records the revisions applied and survived (nil: not recorded); survivalDue
	// is when the desired revision counts as survived, zero once marked. Owned by Run.
	marker      RevisionMarker
	survivalDue time.Time
}

// result is what a worker reports back to the loop.
type result struct {
	kind      actionKind
	id        string
	container string
	err       error
	// For listings: what the runtime holds, and when the listing began.
	states []executor.InstanceState
	began  time.Time
	// For starts: when the images were present.
	pulled time.Time
}

type actionKind int

const (
	actionStart actionKind = iota
	actionStop
	actionRestart
	actionList
)

// New returns an agent that runs instances on rt for the revisions that arrive on
// revisions (a sync.Poller's Events).
func New(cfg Config, rt executor.Runtime, revisions <-chan sync.Event, opts ...Option) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rt == nil || revisions == nil {
		return nil, errors.New("agent: a runtime and a revision channel are required")
	}
	a := &Agent{
		cfg:          cfg,
		rt:           rt,
		planner:      planner.New(spec.InstanceHash),
		log:          cfg.Logger.With("node", cfg.NodeName),
		revisions:    revisions,
		results:      make(chan result, 64),
		probeResults: make(chan executor.ProbeResult, 64),
		sem:          make(chan struct{}, cfg.MaxParallelActions),
		instances:    map[string]*instance{},
	}
	for _, o := range opts {
		o(a)
	}
	a.publish(time.Now())
	return a, nil
}

// Status returns the latest status snapshot. It never blocks and is safe from any goroutine;
// callers must not modify it.
func (a *Agent) Status() *Status { return a.status.Load() }

// Run is the loop. It returns when ctx ends, after every action it started has returned.
// Instances keep running when it returns: a restarted agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	defer a.workers.Wait()
	defer func() {
		for _, in := range a.instances {
			a.stopProbes(in)
		}
	}()
	events := a.rt.Events(ctx)
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	a.list(ctx)
	revisions := a.revisions
	var changes <-chan struct{}
	if a.cluster != nil {
		changes = a.cluster.Changes()
	}
	for {
		select {
		case <-ctx.Done():
			a.markStopped()
			return nil
		case ev, ok := <-revisions:
			if !ok {
				revisions = nil // the source stopped; keep running what runs
				continue
			}
			a.onRevision(ev, time.Now())
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("agent: runtime event stream closed")
			}
			a.onEvent(ev, time.Now())
		case r := <-a.results:
			a.onResult(ctx, r, time.Now())
		case r := <-a.probeResults:
			a.onProbe(r, time.Now())
		case <-changes: // the plan below reads the new snapshot
		case <-resync.C:
			a.list(ctx)
		case <-wake.C:
		}
		now := time.Now()
		a.reconcile(ctx, now)
		a.markSurvived(now)
		a.publish(now)
		a.publishCluster(now)
		a.publishDNS(now)
		wake.Reset(a.nextWake(now))
	}
}

// onRevision takes in what the Git source found. A revision that loaded replaces the
// desired state; one that did not is reported while the last good one stays in force.
func (a *Agent) onRevision(ev sync.Event, now time.Time) {
	a.syncState.LastCheck = now
	a.syncState.RetryIn = ev.RetryIn
	switch {
	case errors.Is(ev.Err, sync.ErrRevisionSuspect):
		rev := ev.Revision
		a.syncState.Rejected, a.syncState.Diagnostics, a.syncState.Error = &rev, nil, ev.Err.Error()
		a.log.Error("not applying the revision this agent went down applying; waiting for a newer commit", "commit", rev.Commit)
		if ev.Desired != nil {
			a.accept(ev.Desired, now)
		}
	case ev.Diagnostics.HasErrors():
		rev := ev.Revision
		a.syncState.Rejected, a.syncState.Diagnostics = &rev, ev.Diagnostics
		a.syncState.Error = fmt.Sprintf("revision %s rejected: %d errors", short(rev.Commit), len(ev.Diagnostics.Errors()))
		a.log.Warn("revision rejected; keeping the last good revision", "commit", rev.Commit, "errors", ev.Diagnostics.Error())
	case ev.Err != nil:
		a.syncState.Error = ev.Err.Error()
		a.log.Warn("git source failed; keeping the last good revision", "err", ev.Err, "retry_in", ev.RetryIn)
	case ev.Desired != nil:
		a.syncState.Error, a.syncState.Rejected, a.syncState.Diagnostics = "", nil, ev.Diagnostics.Warnings()
		a.accept(ev.Desired, now)
	case a.syncState.Rejected != nil && ev.Revision.Commit == a.syncState.Rejected.Commit:
		// The source recovered but its head is still the rejected commit: keep saying so.
		a.syncState.Error = fmt.Sprintf("revision %s rejected: %d errors", short(ev.Revision.Commit), len(a.syncState.Diagnostics.Errors()))
	default:
		a.syncState.Error, a.syncState.Rejected = "", nil
	}
}

// accept makes desired the desired state, unless it already is. The marker records it
// first: the plan that follows is where a hostile revision would take the agent down.
func (a *Agent) accept(desired *spec.Desired, now time.Time) {
	if a.desired != nil && a.desired.Revision.Commit == desired.Revision.Commit {
		return
	}
	a.markApplying(desired.Revision.Commit, now)
	a.desired = desired
	a.hashes = make(map[workloadKey]string, len(desired.Objects.Deployments))
	for _, d := range desired.Objects.Deployments {
		a.hashes[workloadKey{d.Metadata.Namespace, d.Metadata.Name}] = spec.InstanceHash(desired.Objects, d)
	}
	a.timeline = []Stage{{Name: "fetched", Time: now}, {Name: "validated", Time: now}}
	a.log.Info("new revision", "commit", desired.Revision.Commit, "message", desired.Revision.Message)
}

// onEvent takes in what the runtime reports about a container.
func (a *Agent) onEvent(ev executor.Event, now time.Time) {
	in := a.instances[ev.InstanceID]
	if in == nil || in.stopping {
		return
	}
	switch ev.Kind {
	case executor.EventDeleted:
		if in.busy {
			return // our own start or restart is replacing it
		}
		a.log.Warn("instance removed outside Shoal; it will be started again", "instance", in.id, "container", ev.Container)
		a.forget(in)
	case executor.EventExit:
		c := in.containers[ev.Container]
		if c == nil || in.busy || !ev.Time.IsZero() && ev.Time.Before(c.startedAt) {
			return // ours (a restart in flight), or the end of a task already replaced
		}
		a.crashed(in, c, ev.ExitCode, ev.OOMKilled, ev.Time, now)
	}
}

// crashed records a container's exit and schedules its restart on the crash backoff.
func (a *Agent) crashed(in *instance, c *container, code int, oom bool, exitedAt, now time.Time) {
	if exitedAt.IsZero() {
		exitedAt = now
	}
	c.status = executor.StatusExited
	c.lastExit = exitReason(code, oom)
	delay := c.backoff.Next(exitedAt.Sub(c.startedAt))
	c.restartAt = now.Add(delay)
	in.runningSince = time.Time{}
	in.changed = now
	a.log.Warn("container exited", "instance", in.id, "container", c.name, "reason", c.lastExit, "restart_in", delay)
}

// onResult takes in what a worker did.
func (a *Agent) onResult(ctx context.Context, r result, now time.Time) {
	if r.kind == actionList {
		a.listing = false
		if r.err != nil {
			a.log.Warn("listing the runtime failed", "err", r.err)
		} else {
			a.applyListing(r.states, r.began, now)
		}
		if a.listDue {
			a.listDue = false
			a.list(ctx)
		}
		return
	}
	in := a.instances[r.id]
	if in == nil {
		return
	}
	in.busy, in.changed = false, now
	switch r.kind {
	case actionStart:
		a.onStarted(ctx, in, r.err, r.pulled, now)
	case actionStop:
		if r.err != nil {
			a.log.Error("stop failed; will retry", "instance", in.id, "err", r.err)
			return
		}
		a.forget(in)
	case actionRestart:
		c := in.containers[r.container]
		if r.err != nil {
			if errors.Is(r.err, executor.ErrNotFound) {
				a.forget(in)
				return
			}
			a.log.Error("restart failed", "instance", in.id, "container", r.container, "err", r.err)
			a.crashed(in, c, -1, false, now, now)
			c.lastExit = "restart failed: " + r.err.Error() // e.g. a subPath refused: say why in status
			return
		}
		c.status, c.restartAt, c.startedAt, c.pid = executor.StatusRunning, time.Time{}, now, 0
		c.restarts++
		a.list(ctx) // learn the new PID
		if in.prober != nil {
			c.ready = !c.hasReadiness && !c.hasStartup
			in.prober.RestartContainer(c.name)
		}
		if in.allRunning() {
			in.runningSince = now
		}
	}
}

// onStarted records the outcome of a start.
func (a *Agent) onStarted(ctx context.Context, in *instance, err error, pulled, now time.Time) {
	if err == nil {
		in.created, in.startErr, in.message = true, "", ""
		in.startBackoff.Reset()
		for _, c := range in.containers {
			c.status, c.startedAt = executor.StatusRunning, now
		}
		in.runningSince = now
		if a.desired != nil && in.revision == a.desired.Revision.Commit {
			a.stage("pulled", pulled)
		}
		if in.spec != nil {
			a.startProbes(ctx, in, *in.spec)
		}
		a.list(ctx) // learn the PIDs
		return
	}
	in.startErr = PhaseStartError
	switch {
	case errors.Is(err, executor.ErrImagePull):
		in.startErr = PhaseImagePullBackOff
	case errors.Is(err, executor.ErrConfig):
		in.startErr = PhaseConfigError
	case errors.Is(err, executor.ErrForbidden):
		in.startErr = PhaseForbidden
	}
	in.message = err.Error()
	delay := in.startBackoff.Next(0)
	in.retryAt = now.Add(delay)
	a.log.Warn("start failed", "instance", in.id, "phase", in.startErr, "err", err, "retry_in", delay)
}

// applyListing merges a runtime listing taken at began: it adopts instances the loop does
// not know, and notices instances and exits that no event reported.
func (a *Agent) applyListing(states []executor.InstanceState, began, now time.Time) {
	seen := make(map[string]bool, len(states))
	for _, s := range states {
		seen[s.ID] = true
		in := a.instances[s.ID]
		if in == nil {
			in = fromState(s, now, a.cfg.CrashBackoff)
			a.instances[s.ID] = in
			a.log.Info("adopted running instance", "instance", s.ID, "workload", s.Namespace+"/"+s.Workload)
		} else if in.busy || in.changed.After(began) {
			continue
		}
		for _, cs := range in.apply(s, now) {
			if c := in.containers[cs.Name]; c != nil && !in.stopping {
				a.crashed(in, c, cs.ExitCode, cs.OOMKilled, cs.ExitedAt, now)
			}
		}
	}
	for id, in := range a.instances {
		if !seen[id] && in.created && !in.busy && !in.changed.After(began) {
			a.log.Warn("instance vanished from the runtime; it will be started again", "instance", id)
			a.forget(in)
		}
	}
	a.adopted = true
}

// list asks a worker for a runtime listing, unless one is in flight.
func (a *Agent) list(ctx context.Context) {
	if a.listing {
		a.listDue = true
		return
	}
	a.listing = true
	began := time.Now()
	a.dispatch(ctx, func(ctx context.Context) result {
		states, err := a.rt.List(ctx)
		return result{kind: actionList, states: states, err: err, began: began}
	})
}

// dispatch runs an action on a worker, at most MaxParallelActions at once; its result
// comes back to the loop. Actions outlive a cancelled ctx only until they return.
func (a *Agent) dispatch(ctx context.Context, do func(ctx context.Context) result) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		select {
		case a.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r := do(ctx)
		<-a.sem
		select {
		case a.results <- r:
		case <-ctx.Done():
		}
	}()
}

// nextWake is when the loop must look again though nothing arrives.
func (a *Agent) nextWake(now time.Time) time.Duration {
	wake := a.cfg.ResyncInterval
	if !a.survivalDue.IsZero() {
		wake = min(wake, max(a.survivalDue.Sub(now), time.Millisecond))
	}
	for _, in := range a.instances {
		if at := in.nextWake(now); !at.IsZero() {
			wake = min(wake, max(at.Sub(now), time.Millisecond))
		}
	}
	return wake
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
