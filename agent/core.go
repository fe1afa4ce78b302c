package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/shoalhq/shoal/dns"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/network"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// core is the node's state and every decision about it, as etcd-io/raft's RawNode is
// for a raft group: it has no goroutine, does no I/O and reads no clock. The shell (Agent)
// hands it events with Step, takes what to do from Ready, carries that out, and calls
// Advance. Every time it sees is the now of the last Step.
type core struct {
	cfg     Config
	log     *slog.Logger
	planner *planner.Planner
	// clustered is true when the node plans with a gossip cluster and publishes to it.
	clustered bool
	// dnsOn is true when the node serves DNS; domain and nameserver go into the
	// containers' resolv.conf (nameserver invalid: the host's resolv.conf is kept).
	dnsOn      bool
	domain     string
	nameserver netip.Addr
	now        time.Time

	desired *spec.Desired
	// baseWorkloads are desired's Deployments compiled once, desiredKeys their keys
	// sorted; workloads the same but for a Deployment whose failed rollout is reverted,
	// which runs the spec it went back to (applyOverrides); effective is desired with
	// those Deployments swapped, what the planner places.
	baseWorkloads map[workloadKey]*compiled
	desiredKeys   []workloadKey
	workloads     map[workloadKey]*compiled
	effective     spec.Desired
	services      []service // desired's Services with the workloads they select
	syncState     SyncStatus
	timeline      []Stage
	applied       *spec.Revision
	instances     map[string]*instance
	adopted       bool // the first runtime listing was applied
	listing       bool // a listing is in flight
	listDue       bool // another listing was asked for while one was in flight

	// view is the last gossip view, index what is derived from it; notJoined is why this
	// node runs nothing ("" when joined).
	view      gossip.View
	index     viewIndex
	notJoined string
	// placement is the last plan; mine this node's share of it with compiled workloads;
	// unplaced its unplaced replicas by workload, for status; remote what the other nodes
	// run of each workload, for pacing.
	placement planner.Placement
	mine      []assignment
	unplaced  map[workloadKey][]planner.Unplaced
	remote    map[workloadKey]workloadCount
	// planDue says the plan's inputs changed since the last plan: a revision, a listing,
	// members or where instances run, a local instance gone or failed to start, the
	// resync tick, readiness of an instance copied on two nodes. Probe verdicts and
	// restarts otherwise do not; a burst of events costs one plan, made by the next Ready.
	planDue bool

	// What was last published, to publish only changes.
	published     []gossip.InstanceInfo
	publishedMeta gossip.Meta
	dnsPublished  []dns.Service

	// survivalDue is when the desired revision counts as survived, zero once marked.
	survivalDue time.Time

	// decisions are the cluster's decisions (rollout verdicts, reports sent), the latest of
	// each key; verdicts what they say of each Deployment, parsed again when verdictsDue;
	// overridesDue says the workloads must be worked out again (applyOverrides).
	decisions    map[string]gossip.Decision
	verdicts     map[workloadKey]verdicts
	verdictsDue  bool
	overridesDue bool
	// verdictsChanged says the verdicts changed since the commits were last judged.
	verdictsChanged bool
	// rollouts follows the Deployments whose desired spec has no verdict yet.
	rollouts     map[workloadKey]*rolloutTrack
	rolloutStats RolloutStats
	// commits are the revisions kept for reverts (nil: could not be loaded, revertErrors
	// says why, until retryLoadAt), recent the accepted ones in order, loading those asked
	// of the shell, reverts the Deployments compiled from them.
	commits      map[string]*spec.Desired
	recent       []string
	loading      map[string]bool
	reverts      map[commitWorkload]*compiled
	revertErrors map[string]string
	retryLoadAt  time.Time
	// revertWaiting says a revert waits for its commit to load: nothing is planned meanwhile.
	revertWaiting bool
	// reports follows the commits whose fate is reported (report.go).
	reports reportState
	// suspect is the revision this agent went down applying, which the source skipped;
	// it is applied again once every other node runs it (retrySuspect).
	suspect string
	// prevHashes are the spec hashes of the revision before desired, to tell what it changed.
	prevHashes map[workloadKey]string

	// net is the pod network's state: this node's subnet, Services' addresses.
	net netState
	// svc is what the desired Services come to, kept between Readys.
	svc serviceCache

	// rd is what Ready returns: the effects decided since the last Advance.
	rd ready
}

// assignment is one replica this node runs, with the workload it runs.
type assignment struct {
	planner.Assignment
	w *compiled
}

// ready is what the core decided, as plain data for the shell to carry out in order:
// marker first, then probes and actions, then what is published.
type ready struct {
	// markApplying is a revision to record as being applied before anything else is done.
	markApplying string
	// starts, stops and restarts are runtime actions for the workers.
	starts   []executor.InstanceSpec
	stops    []stopAction
	restarts []restartAction
	// list asks for a runtime listing.
	list bool
	// probes starts, stops and restarts the instances' probers, in order.
	probes []probeOp
	// status is the new status snapshot; planInputs what the last plan was computed from
	// (nil: unchanged).
	status     *Status
	planInputs *PlanInputs
	// instances and meta are what to publish to the cluster (nil: unchanged).
	instances []gossip.InstanceInfo
	meta      *gossip.Meta
	// services are the DNS records to serve (nil: unchanged).
	services []dns.Service
	// subnet is this node's new pod subnet claim (nil: unchanged); proxy the Services
	// the proxy programs, peers the nodes whose subnets are routed (nil: unchanged).
	subnet *network.SubnetClaim
	proxy  *[]network.Service
	// proxyChanged names the Services of proxy that changed since the last proxy handed out.
	proxyChanged []network.ServiceKey
	peers        *[]network.Peer
	// retrySuspect is the suspect revision to apply again, if the marker allows.
	retrySuspect string
	// markSurvived is a revision to record as survived.
	markSurvived string
	// decisions are this node's new decisions, to spread; loadCommits earlier commits to
	// load (for reverts); reports commit statuses to send.
	decisions   []gossip.Decision
	loadCommits []string
	reports     []Report
	// wake is when the shell must step a tick though nothing arrives.
	wake time.Time
}

type stopAction struct {
	id    string
	grace time.Duration
	// drain is how long the instance keeps running, out of every Service's endpoints,
	// before it is told to stop.
	drain time.Duration
}

type restartAction struct{ id, container string }

// probeOp starts a prober (spec set), restarts one container's probes (container set), or
// stops a prober (neither).
type probeOp struct {
	id        string
	spec      *executor.InstanceSpec
	container string
}

// The events the core takes.
type (
	event interface{ isEvent() }
	// revisionEvent is what the Git source found.
	revisionEvent struct{ source.Event }
	// listingEvent is a runtime listing that began at began.
	listingEvent struct {
		states []executor.InstanceState
		err    error
		began  time.Time
	}
	// runtimeEvent is a container exit or removal the runtime reported.
	runtimeEvent struct{ executor.Event }
	// resultEvent is the outcome of a start, stop or restart.
	resultEvent struct {
		kind      actionKind
		id        string
		container string
		err       error
		pulled    time.Time // for starts: when the images were present
	}
	// probeEvent is a probe verdict.
	probeEvent struct{ executor.ProbeResult }
	// viewEvent is a new gossip view.
	viewEvent struct{ view gossip.View }
	// joinEvent says why the node is not part of its cluster; "" once joined.
	joinEvent struct{ why string }
	// publishFailed says publishing failed: offer it again.
	publishFailed struct{ what publication }
	// tickEvent is the resync tick or a wake-up: time passed.
	tickEvent struct{ resync bool }
	// commitLoadedEvent is an earlier commit the shell loaded for a revert.
	commitLoadedEvent struct {
		commit  string
		desired *spec.Desired
		err     error
		// suspect marks the revision the agent went down applying, loaded to apply again.
		suspect bool
	}
	// reportedEvent is the outcome of sending a commit status.
	reportedEvent struct {
		report Report
		err    error
	}
)

func (revisionEvent) isEvent()     {}
func (listingEvent) isEvent()      {}
func (runtimeEvent) isEvent()      {}
func (resultEvent) isEvent()       {}
func (probeEvent) isEvent()        {}
func (viewEvent) isEvent()         {}
func (joinEvent) isEvent()         {}
func (publishFailed) isEvent()     {}
func (tickEvent) isEvent()         {}
func (commitLoadedEvent) isEvent() {}
func (reportedEvent) isEvent()     {}

// publication is one of the things the core publishes.
type publication int

const (
	publishInstances publication = iota
	publishMeta
	publishServices
)

type actionKind int

const (
	actionStart actionKind = iota
	actionStop
	actionRestart
)

func newCore(cfg Config, clustered bool, d DNSConfig) *core {
	c := &core{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeName), clustered: clustered,
		dnsOn: d.Server != nil, domain: d.Domain, nameserver: d.Nameserver,
		instances: map[string]*instance{}, revertErrors: map[string]string{},
	}
	// The planner hashes with the compiled workloads: once per revision, not per plan.
	c.planner = planner.New(func(set *spec.Set, d *spec.Deployment) string {
		if w := c.workloads[workloadKey{d.Metadata.Namespace, d.Metadata.Name}]; w != nil && w.d == d {
			return w.hash
		}
		return spec.InstanceHash(set, d)
	}).WithPodNetwork(cfg.Network.On())
	if cfg.Network.On() {
		c.net.podRange, _ = network.NewPodRange(cfg.Network.ClusterCIDR, cfg.Network.NodeSubnetBits) // validated
		if cl := cfg.Network.Claim; cl.Node == cfg.NodeName && c.net.podRange.IsClaimable(cl.Subnet) {
			c.net.claim = cl
		}
		c.net.claim.Node = cfg.NodeName
	}
	c.requestList()
	return c
}

// Step takes in one event that happened at now.
func (c *core) Step(ev event, now time.Time) {
	c.now = now
	switch ev := ev.(type) {
	case revisionEvent:
		c.onRevision(ev.Event)
	case listingEvent:
		c.onListing(ev)
	case runtimeEvent:
		c.onRuntime(ev.Event)
	case resultEvent:
		c.onResult(ev)
	case probeEvent:
		c.onProbe(ev.ProbeResult)
	case viewEvent:
		c.onView(ev.view)
	case joinEvent:
		if ev.why != c.notJoined {
			if ev.why != "" {
				c.log.Warn("not part of the cluster this node was told to join: running nothing until it joins", "err", ev.why)
			} else {
				c.log.Info("joined the cluster")
			}
			c.notJoined, c.planDue = ev.why, true
		}
	case publishFailed:
		switch ev.what {
		case publishInstances:
			c.published = nil
		case publishMeta:
			c.publishedMeta = gossip.Meta{}
		case publishServices:
			c.dnsPublished = nil
		}
	case commitLoadedEvent:
		if ev.suspect {
			c.onSuspectLoaded(ev)
		} else {
			c.onCommitLoaded(ev)
		}
	case reportedEvent:
		c.onReported(ev)
	case tickEvent:
		if ev.resync {
			c.requestList()
			c.planDue = true // what an event could not say, e.g. a duplicate elsewhere became ready
		}
	}
}

// Ready brings the decisions up to date with every event stepped since the last Advance
// (one plan at most, however many events) and returns what to do. Calling it again before
// Advance returns the same effects and decides nothing twice: every decision is guarded
// by the state of the record it changes.
func (c *core) Ready() ready {
	c.decideSubnet()
	c.retryFailedLoads()
	for range 2 {
		// A verdict decided on the way changes what runs: acted on in the same Ready.
		c.refreshVerdicts()
		c.applyOverrides()
		c.reconcile()
		c.judgeRollouts()
		if !c.verdictsDue {
			break
		}
	}
	c.trackReports()
	c.retrySuspect()
	c.markSurvived()
	c.rd.status = c.statusSnapshot()
	if c.clustered {
		if list := c.gossipInstances(); !equalInstances(list, c.published) {
			c.rd.instances, c.published = list, list
		}
		if m := c.nodeMeta(); !equalMeta(m, c.publishedMeta) {
			c.rd.meta, c.publishedMeta = &m, m
		}
	}
	var proxyChanged []network.ServiceKey
	if c.desired != nil && (c.dnsOn || c.cfg.Network.On()) {
		var dnsChanged bool
		dnsChanged, proxyChanged = c.refreshServices()
		if c.dnsOn && (dnsChanged || c.dnsPublished == nil) && !equalServices(c.svc.dns, c.dnsPublished) {
			c.rd.services, c.dnsPublished = c.svc.dns, c.svc.dns
		}
	}
	c.networkReady(proxyChanged)
	c.rd.wake = c.nextWake()
	return c.rd
}

// Advance acknowledges that the shell carried out the last Ready.
func (c *core) Advance() { c.rd = ready{} }

// unsurvived is the desired revision while it has not survived yet: the shell releases
// it when it stops cleanly.
func (c *core) unsurvived() string {
	if c.desired == nil || c.survivalDue.IsZero() {
		return ""
	}
	return c.desired.Revision.Commit
}

// onRevision takes in what the Git source found. A revision that loaded replaces the
// desired state; one that did not is reported while the last good one stays in force.
func (c *core) onRevision(ev source.Event) {
	c.syncState.LastCheck = c.now
	c.syncState.RetryIn = ev.RetryIn
	switch {
	case errors.Is(ev.Err, source.ErrRevisionSuspect):
		rev := ev.Revision
		c.syncState.Rejected, c.syncState.Diagnostics, c.syncState.Error = &rev, nil, ev.Err.Error()
		c.suspect = rev.Commit
		c.log.Error("not applying the revision this agent went down applying; waiting for a newer commit", "commit", rev.Commit)
		if ev.Desired != nil {
			c.accept(ev.Desired)
		}
	case ev.Diagnostics.HasErrors():
		rev := ev.Revision
		c.syncState.Rejected, c.syncState.Diagnostics = &rev, ev.Diagnostics
		c.syncState.Error = fmt.Sprintf("revision %s rejected: %d errors", short(rev.Commit), len(ev.Diagnostics.Errors()))
		c.fetched(rev, ev.Diagnostics)
		c.log.Warn("revision rejected; keeping the last good revision", "commit", rev.Commit, "errors", ev.Diagnostics.Error())
	case ev.Err != nil:
		c.syncState.Error = ev.Err.Error()
		c.log.Warn("git source failed; keeping the last good revision", "err", ev.Err, "retry_in", ev.RetryIn)
	case ev.Desired != nil:
		c.suspect = ""
		c.syncState.Error, c.syncState.Rejected, c.syncState.Diagnostics = "", nil, ev.Diagnostics.Warnings()
		c.accept(ev.Desired)
	case c.syncState.Rejected != nil && ev.Revision.Commit == c.syncState.Rejected.Commit:
		// The source recovered but its head is still the rejected commit: keep saying so.
		c.syncState.Error = fmt.Sprintf("revision %s rejected: %d errors", short(ev.Revision.Commit), len(c.syncState.Diagnostics.Errors()))
	default:
		c.syncState.Error, c.syncState.Rejected = "", nil
	}
}

// accept makes desired the desired state, unless it already is, and compiles it. The
// marker records it first: the plan that follows is where a hostile revision would take
// the agent down.
func (c *core) accept(desired *spec.Desired) {
	if c.desired != nil && c.desired.Revision.Commit == desired.Revision.Commit {
		return
	}
	c.survivalDue = c.now.Add(c.cfg.SurviveAfter)
	c.rd.markApplying = desired.Revision.Commit
	c.prevHashes = map[workloadKey]string{}
	for k, w := range c.baseWorkloads {
		c.prevHashes[k] = w.hash
	}
	c.desired, c.planDue = desired, true
	c.baseWorkloads = compile(desired, c.cfg.Network.On())
	c.desiredKeys = slices.SortedFunc(maps.Keys(c.baseWorkloads), compareKeys)
	c.overridesDue = true
	c.applyOverrides()
	c.keepCommit(desired)
	c.fetched(desired.Revision, nil)
	c.assignServices(desired.Objects)
	c.index.workloads = nil
	c.timeline = []Stage{{Name: "fetched", Time: c.now}, {Name: "validated", Time: c.now}}
	c.log.Info("new revision", "commit", desired.Revision.Commit, "message", desired.Revision.Message)
}

// onRuntime takes in what the runtime reports about a container.
func (c *core) onRuntime(ev executor.Event) {
	in := c.instances[ev.InstanceID]
	if in == nil || in.stopping {
		return
	}
	switch ev.Kind {
	case executor.EventDeleted:
		if in.busy {
			return // our own start or restart is replacing it
		}
		c.log.Warn("instance removed outside Shoal; it will be started again", "instance", in.id, "container", ev.Container)
		c.forget(in)
	case executor.EventExit:
		ct := in.containers[ev.Container]
		if ct == nil || in.busy || !ev.Time.IsZero() && ev.Time.Before(ct.startedAt) {
			return // ours (a restart in flight), or the end of a task already replaced
		}
		if ct.completes() && ev.ExitCode == 0 && !ev.OOMKilled {
			c.initCompleted(in, ct)
			return
		}
		c.crashed(in, ct, ev.ExitCode, ev.OOMKilled, ev.Time)
		if c.copiedElsewhere(in) {
			c.planDue = true // no longer ready: the copy elsewhere may be the one kept
		}
	}
}

// initCompleted records an init container that ran to completion: the next Ready starts
// what comes after it (advance).
func (c *core) initCompleted(in *instance, ct *container) {
	ct.status, ct.initDone, ct.restartAt = executor.StatusExited, true, time.Time{}
	in.changed = c.now
	c.log.Info("init container completed", "instance", in.id, "container", ct.name)
}

// crashed records a container's exit and schedules its restart on the crash backoff.
func (c *core) crashed(in *instance, ct *container, code int, oom bool, exitedAt time.Time) {
	if exitedAt.IsZero() {
		exitedAt = c.now
	}
	ct.status = executor.StatusExited
	ct.lastExit = exitReason(code, oom)
	delay := ct.backoff.Next(exitedAt.Sub(ct.startedAt))
	ct.restartAt = c.now.Add(delay)
	in.runningSince = time.Time{}
	in.changed = c.now
	c.log.Warn("container exited", "instance", in.id, "container", ct.name, "reason", ct.lastExit, "restart_in", delay)
}

// onResult takes in what a worker did.
func (c *core) onResult(r resultEvent) {
	in := c.instances[r.id]
	if in == nil {
		return
	}
	in.busy, in.changed = false, c.now
	switch r.kind {
	case actionStart:
		c.onStarted(in, r.err, r.pulled)
	case actionStop:
		if r.err != nil {
			c.log.Error("stop failed; will retry", "instance", in.id, "err", r.err)
			return
		}
		c.forget(in)
	case actionRestart:
		ct := in.containers[r.container]
		if r.err != nil {
			if errors.Is(r.err, executor.ErrNotFound) {
				c.forget(in)
				return
			}
			c.log.Error("restart failed", "instance", in.id, "container", r.container, "err", r.err)
			c.crashed(in, ct, -1, false, c.now)
			ct.lastExit = "restart failed: " + r.err.Error() // e.g. a subPath refused: say why in status
			return
		}
		ct.status, ct.restartAt, ct.startedAt, ct.pid = executor.StatusRunning, time.Time{}, c.now, 0
		ct.restarts++
		c.requestList() // learn the new PID
		if in.probing {
			ct.ready = !ct.hasReadiness && !ct.hasStartup
			c.rd.probes = append(c.rd.probes, probeOp{id: in.id, container: ct.name})
		}
		if in.allRunning() {
			in.runningSince = c.now
		}
		c.sidecarsStarted(in) // a sidecar that crashed before it let the next init container start
	}
}

// onStarted records the outcome of a start.
func (c *core) onStarted(in *instance, err error, pulled time.Time) {
	if err == nil {
		first := !in.created
		in.created, in.startErr, in.message, in.startFailures = true, "", "", 0
		in.startBackoff.Reset()
		for _, name := range in.order[:min(in.starting, len(in.order))] {
			ct := in.containers[name]
			if ct.created {
				continue // an earlier stage's
			}
			ct.created, ct.status, ct.startedAt = true, executor.StatusRunning, c.now
			if in.probing {
				ct.ready = !ct.hasReadiness && !ct.hasStartup
				c.rd.probes = append(c.rd.probes, probeOp{id: in.id, container: ct.name}) // its probes count from now
			}
		}
		if in.allRunning() {
			in.runningSince = c.now
		}
		if c.desired != nil && in.revision == c.desired.Revision.Commit {
			c.stage("pulled", pulled)
		}
		if first && in.spec != nil {
			c.startProbes(in)
		}
		c.sidecarsStarted(in)
		c.requestList() // learn the PIDs
		return
	}
	in.startErr = PhaseStartError
	if !executor.RuntimeUnavailable(err) {
		in.startFailures++ // the spec's failure, not the node's: it counts against a rollout
	}
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
	in.retryAt = c.now.Add(delay)
	if in.created {
		// A later stage (the next init container, or the app containers) failed: the
		// instance runs what it ran, and advance tries again after the backoff.
		c.log.Warn("start of the next containers failed", "instance", in.id, "phase", in.startErr, "err", err, "retry_in", delay)
		return
	}
	c.planDue = true // it no longer runs: the plan's view changed
	c.log.Warn("start failed", "instance", in.id, "phase", in.startErr, "err", err, "retry_in", delay)
}

// onListing merges a runtime listing taken at began: it adopts instances the core does
// not know, and notices instances and exits that no event reported.
func (c *core) onListing(l listingEvent) {
	c.listing = false
	if c.listDue {
		c.listDue = false
		c.requestList()
	}
	if l.err != nil {
		c.log.Warn("listing the runtime failed", "err", l.err)
		return
	}
	c.planDue = true
	seen := make(map[string]bool, len(l.states))
	for _, s := range l.states {
		seen[s.ID] = true
		in := c.instances[s.ID]
		if in == nil {
			in = fromState(s, c.now, c.cfg.CrashBackoff)
			c.instances[s.ID] = in
			c.log.Info("adopted running instance", "instance", s.ID, "workload", s.Namespace+"/"+s.Workload)
		} else if in.busy || in.changed.After(l.began) {
			continue
		}
		for _, cs := range in.apply(s, c.now) {
			if ct := in.containers[cs.Name]; ct != nil && !in.stopping {
				c.crashed(in, ct, cs.ExitCode, cs.OOMKilled, cs.ExitedAt)
			}
		}
	}
	for _, id := range c.instanceIDs() {
		if in := c.instances[id]; !seen[id] && in.created && !in.busy && !in.changed.After(l.began) {
			c.log.Warn("instance vanished from the runtime; it will be started again", "instance", id)
			c.forget(in)
		}
	}
	c.adopted = true
}

// requestList asks for a runtime listing, unless one is in flight.
func (c *core) requestList() {
	if c.listing {
		c.listDue = true
		return
	}
	c.listing, c.rd.list = true, true
}

// forget drops the record of an instance that no longer exists.
func (c *core) forget(in *instance) {
	c.stopProbes(in)
	delete(c.instances, in.id)
	c.planDue = true
}

// nextWake is when the shell must step a tick though nothing arrives.
func (c *core) nextWake() time.Time {
	wake := c.now.Add(c.cfg.ResyncInterval)
	for _, at := range []time.Time{c.survivalDue, c.rolloutWake(), c.retryLoadAt, c.reports.wake} {
		if !at.IsZero() && at.Before(wake) {
			wake = at
		}
	}
	for _, in := range c.instances {
		if at := in.nextWake(c.now); !at.IsZero() && at.Before(wake) {
			wake = at
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
