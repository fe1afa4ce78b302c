package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/source"
)

// Agent is the shell around the core: it owns the goroutines, the clock and every
// collaborator that does I/O. Create it with New and call Run once.
type Agent struct {
	cfg       Config
	rt        executor.Runtime
	log       *slog.Logger
	revisions <-chan source.Event
	cluster   Cluster        // nil: this node plans for itself alone
	dns       DNSConfig      // zero: no DNS
	marker    RevisionMarker // nil: revisions are not recorded
	network   Network        // nil: no pod network
	loader    CommitLoader   // nil: reverts only to revisions taken in since the start
	reporter  Reporter       // nil: commit statuses are not sent
	// decisionsFile keeps the decisions of an agent without a cluster; "" for none.
	decisionsFile string
	// netWorker programs the pod network off the loop; nil without one.
	netWorker *netWorker
	// clock is the one place the agent reads the time.
	clock func() time.Time

	// core is owned by the Run goroutine once Run started.
	core *core
	// results carries the workers' results, probeResults the probers' verdicts, to Run.
	results      chan event
	probeResults chan executor.ProbeResult
	sem          chan struct{}
	workers      sync.WaitGroup
	// probers are the instances' running probers, by instance ID; owned by Run.
	probers map[string]*executor.Prober
	// joinErr is why the node is not part of its cluster, as last stepped; owned by Run.
	joinErr string

	status     atomic.Pointer[Status]
	planInputs atomic.Pointer[PlanInputs] // what the last plan was computed from
	running    atomic.Bool
}

// maxBurst bounds how many waiting results and verdicts Run steps before it acts: a burst
// costs one Ready (one plan at most), and a flood cannot delay the actions for long.
const maxBurst = 256

// New returns an agent that runs instances on rt for the revisions that arrive on
// revisions (a source.Poller's Events).
func New(cfg Config, rt executor.Runtime, revisions <-chan source.Event, opts ...Option) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rt == nil || revisions == nil {
		return nil, errors.New("agent: a runtime and a revision channel are required")
	}
	a := &Agent{
		cfg:          cfg,
		rt:           rt,
		log:          cfg.Logger.With("node", cfg.NodeName),
		revisions:    revisions,
		clock:        time.Now,
		results:      make(chan event, 64),
		probeResults: make(chan executor.ProbeResult, 64),
		sem:          make(chan struct{}, cfg.MaxParallelActions),
		probers:      map[string]*executor.Prober{},
	}
	for _, o := range opts {
		o(a)
	}
	switch {
	case cfg.Network.On() && a.network == nil:
		return nil, errors.New("agent: a pod network is configured but none given (WithNetwork)")
	case !cfg.Network.On() && a.network != nil:
		return nil, errors.New("agent: WithNetwork without a pod network configured (Config.Network)")
	case a.network != nil:
		a.netWorker = newNetWorker(a.network, a.log)
	}
	a.cfg.Reports = a.reporter != nil
	a.core = newCore(a.cfg, a.cluster != nil, a.dns)
	if a.decisionsFile != "" && a.cluster == nil {
		list, err := loadDecisions(a.decisionsFile)
		if err != nil {
			a.log.Warn("the decisions of the last run are lost", "err", err)
		}
		a.core.onDecisions(list)
	}
	a.core.Step(tickEvent{}, a.clock())
	a.status.Store(a.core.statusSnapshot())
	return a, nil
}

// Status returns the latest status snapshot. It never blocks and is safe from any goroutine;
// callers must not modify it.
func (a *Agent) Status() *Status { return a.status.Load() }

// Run is the loop: it steps the core with each event, carries out what the core decided,
// and acknowledges it. It returns when ctx ends, after every action it started has
// returned. Instances keep running when it returns: a restarted agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	defer a.workers.Wait()
	defer a.stopProbers()
	if a.netWorker != nil {
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			a.netWorker.run(ctx)
		}()
	}
	events := a.rt.Events(ctx)
	resync := time.NewTicker(a.cfg.ResyncInterval)
	defer resync.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	revisions := a.revisions
	var changes <-chan struct{}
	if a.cluster != nil {
		changes = a.cluster.Changes()
		a.core.Step(viewEvent{a.cluster.Snapshot()}, a.clock())
	}
	for {
		a.stepJoin()
		rd := a.core.Ready()
		a.carryOut(ctx, rd)
		a.core.Advance()
		wake.Reset(max(rd.wake.Sub(a.clock()), time.Millisecond))

		select {
		case <-ctx.Done():
			a.markStopped()
			return nil
		case ev, ok := <-revisions:
			if !ok {
				revisions = nil // the source stopped; keep running what runs
				continue
			}
			a.core.Step(revisionEvent{ev}, a.clock())
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("agent: runtime event stream closed")
			}
			a.core.Step(runtimeEvent{ev}, a.clock())
		case ev := <-a.results:
			a.core.Step(ev, a.clock())
		case r := <-a.probeResults:
			a.core.Step(probeEvent{r}, a.clock())
		case <-changes:
			a.core.Step(viewEvent{a.cluster.Snapshot()}, a.clock())
		case <-resync.C:
			a.core.Step(tickEvent{resync: true}, a.clock())
		case <-wake.C:
			a.core.Step(tickEvent{}, a.clock())
		}
		a.drain()
	}
}

// drain steps the results and verdicts already waiting, so that a burst costs one Ready.
func (a *Agent) drain() {
	for range maxBurst {
		select {
		case ev := <-a.results:
			a.core.Step(ev, a.clock())
		case r := <-a.probeResults:
			a.core.Step(probeEvent{r}, a.clock())
		default:
			return
		}
	}
}

// stepJoin tells the core when the node joins or leaves its cluster: the gossip layer
// says so without signalling a change of view.
func (a *Agent) stepJoin() {
	if a.cluster == nil {
		return
	}
	why := ""
	if err := a.cluster.JoinError(); err != nil {
		why = err.Error()
	}
	if why != a.joinErr {
		a.joinErr = why
		if why == "" {
			// The view of the cluster just joined, before the core acts as a member: a view
			// from before the join shows this node alone, the decider of everything.
			a.core.Step(viewEvent{a.cluster.Snapshot()}, a.clock())
		}
		a.core.Step(joinEvent{why}, a.clock())
	}
}

// carryOut does what the core decided, in order: record the revision, run the probers and
// the actions, publish.
func (a *Agent) carryOut(ctx context.Context, rd ready) {
	if rd.markApplying != "" && a.marker != nil {
		if err := a.marker.Applying(rd.markApplying); err != nil {
			a.log.Error("recording the revision being applied failed", "commit", rd.markApplying, "err", err)
		}
	}
	for _, op := range rd.probes {
		a.probe(ctx, op)
	}
	for _, s := range rd.stops {
		a.dispatchAfter(ctx, s.drain, func(ctx context.Context) event {
			return resultEvent{kind: actionStop, id: s.id, err: a.rt.Stop(ctx, s.id, s.grace)}
		})
	}
	for _, s := range rd.starts {
		a.dispatch(ctx, func(ctx context.Context) event { return a.start(ctx, s) })
	}
	for _, r := range rd.restarts {
		a.dispatch(ctx, func(ctx context.Context) event {
			return resultEvent{kind: actionRestart, id: r.id, container: r.container, err: a.rt.Restart(ctx, r.id, r.container)}
		})
	}
	if rd.list {
		began := a.clock()
		a.dispatch(ctx, func(ctx context.Context) event {
			states, err := a.rt.List(ctx)
			return listingEvent{states: states, err: err, began: began}
		})
	}
	a.status.Store(rd.status)
	if rd.planInputs != nil {
		a.planInputs.Store(rd.planInputs)
	}
	a.publish(rd)
	if a.netWorker != nil {
		a.netWorker.offer(rd)
	}
	for _, commit := range rd.loadCommits {
		a.loadCommit(ctx, commit, false)
	}
	if rd.retrySuspect != "" {
		a.retrySuspect(ctx, rd.retrySuspect)
	}
	for _, r := range rd.reports {
		a.workers.Add(1)
		go func() {
			defer a.workers.Done()
			err := a.reporter.Send(ctx, r)
			select {
			case a.results <- reportedEvent{report: r, err: err}:
			case <-ctx.Done():
			}
		}()
	}
	if rd.markSurvived != "" && a.marker != nil {
		if err := a.marker.Survived(rd.markSurvived); err != nil {
			a.log.Error("recording the revision as survived failed", "commit", rd.markSurvived, "err", err)
		}
	}
}

// publish tells the cluster and the DNS server what changed; what fails is offered again.
func (a *Agent) publish(rd ready) {
	now := a.clock()
	if rd.instances != nil {
		if err := a.cluster.SetInstances(rd.instances); err != nil {
			a.log.Error("publishing instances to the cluster failed", "err", err)
			a.core.Step(publishFailed{what: publishInstances}, now)
		}
	}
	if rd.meta != nil {
		if err := a.cluster.UpdateNode(*rd.meta); err != nil {
			a.log.Error("publishing node metadata failed", "err", err)
			a.core.Step(publishFailed{what: publishMeta}, now)
		}
	}
	if a.cluster == nil && a.decisionsFile != "" && len(rd.decisions) > 0 {
		if err := saveDecisions(a.decisionsFile, a.core.decisionList()); err != nil {
			a.log.Error("saving decisions failed", "err", err)
		}
	}
	for _, d := range rd.decisions {
		if a.cluster == nil {
			break // the core keeps its own decisions
		}
		if _, err := a.cluster.Decide(d.Key, d.Body); err != nil {
			a.log.Error("spreading a decision failed", "key", d.Key, "err", err)
		}
	}
	if rd.services != nil {
		snap, err := dns.NewSnapshot(a.dns.Domain, rd.services)
		if err != nil {
			a.log.Error("DNS records not updated", "err", err)
			a.core.Step(publishFailed{what: publishServices}, now)
			return
		}
		a.dns.Server.Swap(snap)
	}
}

// retrySuspect loads again the revision the agent went down applying, once the marker
// agrees that it was not retried before.
func (a *Agent) retrySuspect(ctx context.Context, commit string) {
	if a.marker != nil {
		ok, err := a.marker.Retry(commit)
		if err == nil && !ok {
			err = errors.New("it was applied again once already, and the agent went down again")
		}
		if err != nil {
			a.core.Step(commitLoadedEvent{commit: commit, suspect: true, err: err}, a.clock())
			return
		}
	}
	a.loadCommit(ctx, commit, true)
}

// loadCommit loads an earlier commit (for a revert, or a suspect to apply again), off the loop.
func (a *Agent) loadCommit(ctx context.Context, commit string, suspect bool) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		ev := commitLoadedEvent{commit: commit, suspect: suspect, err: errors.New("no Git source to load it from")}
		if a.loader != nil {
			ev.desired, ev.err = a.loader.LoadCommit(ctx, commit)
		}
		select {
		case a.results <- ev:
		case <-ctx.Done():
		}
	}()
}

// start pulls the images of an instance's stage and starts it: an image is pulled when
// its container is about to start, not while the init containers before it run.
func (a *Agent) start(ctx context.Context, s executor.InstanceSpec) event {
	for _, c := range s.StageContainers() {
		if err := a.rt.EnsureImage(ctx, c.Image, c.PullPolicy); err != nil {
			return resultEvent{kind: actionStart, id: s.ID, err: err}
		}
	}
	pulled := a.clock()
	return resultEvent{kind: actionStart, id: s.ID, err: a.rt.Start(ctx, s), pulled: pulled}
}

// probe starts, restarts or stops an instance's prober.
func (a *Agent) probe(ctx context.Context, op probeOp) {
	switch {
	case op.spec != nil:
		addr := a.cfg.NodeAddr // host networking
		if op.spec.Addr.IsValid() {
			addr = op.spec.Addr.String() // its own address on the pod network
		}
		p, err := executor.StartProber(ctx, a.rt, *op.spec, addr, a.probeResults)
		if err != nil {
			a.log.Error("probes not started", "instance", op.id, "err", err)
			return
		}
		a.probers[op.id] = p
	case op.container != "":
		if p := a.probers[op.id]; p != nil {
			p.RestartContainer(op.container)
		}
	default:
		a.stopProber(op.id)
	}
}

// stopProber ends an instance's prober without making the loop wait for checks in flight.
func (a *Agent) stopProber(id string) {
	p := a.probers[id]
	if p == nil {
		return
	}
	delete(a.probers, id)
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		p.Stop()
	}()
}

func (a *Agent) stopProbers() {
	for id := range a.probers {
		a.stopProber(id)
	}
}

// dispatch runs an action on a worker, at most MaxParallelActions at once; its result
// comes back to the loop. Actions outlive a cancelled ctx only until they return.
func (a *Agent) dispatch(ctx context.Context, do func(ctx context.Context) event) {
	a.dispatchAfter(ctx, 0, do)
}

// dispatchAfter is dispatch once delay has passed, without holding a worker meanwhile.
func (a *Agent) dispatchAfter(ctx context.Context, delay time.Duration, do func(ctx context.Context) event) {
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
		}
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

// markStopped tells the marker the agent stops cleanly. It is called on the way out of
// Run, never from a deferred call: a panic unwinding Run must leave the revision marked.
func (a *Agent) markStopped() {
	commit := a.core.unsurvived()
	if a.marker == nil || commit == "" {
		return
	}
	if err := a.marker.Release(commit); err != nil {
		a.log.Error("recording a clean stop failed", "commit", commit, "err", err)
	}
}
