package agent

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/spec"
)

// Rollout verdicts.
//
// Every node follows every Deployment's rollout to a new spec (rolloutTrack) and the
// rules below decide its fate; a verdict is a gossip Decision, signed by the node that
// made it and kept by every node, so that each rollout is decided once for the whole
// cluster, survives its decider, and a node that joins later honours it:
//
//   - good/NS/NAME holds the last spec of the Deployment that rolled out in full: every
//     replica of it ready (for minReadySeconds) and nothing older running. The decider
//     of the key (decides) records it.
//   - failed/NS/NAME holds a spec whose rollout failed, and the spec to go back to (the
//     good one). The decider records it when the progress deadline passes with no
//     progress; the node that runs an instance of the new spec records it as soon as
//     that instance restarted, or failed to start, crashLimit times. While it holds, the
//     Deployment runs the good spec in place of the failed one (revert). The decider
//     clears it once a later commit changes the Deployment, so that the same spec
//     committed again later is tried again.
//
// Decisions are max-registers: for one key the latest (by its author's clock, then
// author name) wins everywhere, so nodes that decided differently on two sides of a
// partition agree on one verdict once they heal.
const (
	goodPrefix   = "good/"
	failedPrefix = "failed/"
	reportPrefix = "report/"

	// rolloutSettle is how long every replica of a new spec must stay ready, with nothing
	// older left, before the rollout counts as succeeded: an instance that crashes right
	// after it starts looks ready for a moment.
	rolloutSettle = 3 * time.Second
	// crashLimit is how many restarts, or failed starts, of one instance of a new spec
	// fail its rollout before the progress deadline.
	crashLimit = 3
	// AutoRevertAnnotation on a Deployment, set to "false", turns automatic reverts off:
	// a failed rollout then stops where it is, as in Kubernetes.
	AutoRevertAnnotation = "shoal.dev/auto-revert"
)

// goodVerdict is the body of a good/ decision.
type goodVerdict struct {
	Hash   string `json:"hash"`
	Commit string `json:"commit"`
	// Started is when the decider saw the rollout begin; zero when it did not.
	Started time.Time `json:"started,omitzero"`
}

// failedVerdict is the body of a failed/ decision.
type failedVerdict struct {
	Hash    string    `json:"hash"`
	Commit  string    `json:"commit"`
	Reason  string    `json:"reason"`
	Started time.Time `json:"started,omitzero"`
	// RevertHash and RevertCommit are the spec to go back to, and a commit that has it;
	// empty when there is none (the first rollout, or auto-revert off).
	RevertHash   string `json:"revertHash,omitempty"`
	RevertCommit string `json:"revertCommit,omitempty"`
	// Cleared says a later commit changed the Deployment: the verdict no longer holds.
	Cleared bool `json:"cleared,omitempty"`
}

// verdicts are what the decisions say about one Deployment.
type verdicts struct {
	good     *goodVerdict
	goodAt   time.Time
	goodBy   string
	failed   *failedVerdict
	failedAt time.Time
	failedBy string
}

// parse takes in decision d, of the kind prefix names; a body that does not parse (from a
// broken or hostile member) is ignored.
func (v *verdicts) parse(prefix string, d gossip.Decision) {
	switch prefix {
	case goodPrefix:
		var g goodVerdict
		if json.Unmarshal(d.Body, &g) == nil && g.Hash != "" {
			v.good, v.goodAt, v.goodBy = &g, d.Time, d.Author
		}
	case failedPrefix:
		var f failedVerdict
		if json.Unmarshal(d.Body, &f) == nil && f.Hash != "" {
			v.failed, v.failedAt, v.failedBy = &f, d.Time, d.Author
		}
	}
}

// holds reports whether a failure verdict is in force for spec hash: one that no later
// commit cleared, and that is later than a success verdict for the same spec (two sides of
// a partition may have judged one rollout differently: the later verdict stands).
func (v verdicts) holds(hash string) bool {
	if v.failed == nil || v.failed.Cleared || v.failed.Hash != hash {
		return false
	}
	return v.good == nil || v.good.Hash != hash || v.failedAt.After(v.goodAt) ||
		v.failedAt.Equal(v.goodAt) && v.failedBy > v.goodBy
}

// settled reports whether the rollout to hash has a verdict.
func (v verdicts) settled(hash string) bool {
	return v.good != nil && v.good.Hash == hash || v.holds(hash)
}

// rolloutTrack is this node's record of one Deployment's rollout to a spec that has no
// verdict yet.
type rolloutTrack struct {
	hash string
	// commit is the desired commit when this node first wanted hash: one that has it.
	commit string
	// started is when this node first wanted hash; progress when the rollout last made
	// progress (an instance of the new spec started or became ready), which the progress
	// deadline counts from, as Kubernetes' does.
	started, progress time.Time
	updated, ready    int
	// doneSince is since when every replica of the new spec is ready and nothing older
	// runs (zero: not so); restarts counts the restarts of this node's new instances, a
	// rise of which starts the wait again.
	doneSince time.Time
	restarts  int
}

// rolloutCounts are a Deployment's instances across the cluster, by spec.
type rolloutCounts struct {
	updated, ready, old int
}

// decisionKey is the key of a verdict about workload k.
func decisionKey(prefix string, k workloadKey) string { return prefix + k.namespace + "/" + k.name }

// onDecisions merges the decisions of a view (or this node's own) into what the core
// knows: for each key the latest wins.
func (c *core) onDecisions(list []gossip.Decision) {
	for _, d := range list {
		if c.mergeDecision(d) {
			c.verdictsDue = true
		}
	}
}

// mergeDecision keeps d when it is newer than what the core holds for its key.
func (c *core) mergeDecision(d gossip.Decision) bool {
	old, ok := c.decisions[d.Key]
	if ok && cmp.Or(old.Time.Compare(d.Time), cmp.Compare(old.Author, d.Author)) >= 0 {
		return false
	}
	if c.decisions == nil {
		c.decisions = map[string]gossip.Decision{}
	}
	c.decisions[d.Key] = d
	return true
}

// decide records a decision of this node and hands it to the shell to spread.
func (c *core) decide(key string, body any) {
	b, err := json.Marshal(body)
	if err != nil || len(b) > gossip.MaxDecisionBody {
		c.log.Error("decision not recorded: body too large", "key", key, "bytes", len(b))
		return
	}
	d := gossip.Decision{Key: key, Author: c.cfg.NodeName, Time: c.now.Truncate(time.Millisecond), Body: b}
	if c.mergeDecision(d) {
		c.verdictsDue = true
	}
	c.rd.decisions = append(c.rd.decisions, d)
}

// refreshVerdicts parses the verdict decisions again when they changed; it reports whether
// any Deployment's effective spec may have changed.
func (c *core) refreshVerdicts() {
	if !c.verdictsDue {
		return
	}
	c.verdictsDue = false
	out := map[workloadKey]verdicts{}
	for key, d := range c.decisions {
		prefix, k, ok := parseVerdictKey(key)
		if !ok {
			continue
		}
		v := out[k]
		v.parse(prefix, d)
		out[k] = v
	}
	c.verdicts = out
	c.overridesDue, c.verdictsChanged = true, true
}

// verdictsOf parses the verdicts of workload k from the decisions now, for a decision
// just made in the same Ready.
func (c *core) verdictsOf(k workloadKey) verdicts {
	var v verdicts
	for _, prefix := range []string{goodPrefix, failedPrefix} {
		if d, ok := c.decisions[decisionKey(prefix, k)]; ok {
			v.parse(prefix, d)
		}
	}
	return v
}

func parseVerdictKey(key string) (prefix string, k workloadKey, ok bool) {
	for _, p := range []string{goodPrefix, failedPrefix} {
		if rest, found := strings.CutPrefix(key, p); found {
			ns, name, found := strings.Cut(rest, "/")
			return p, workloadKey{ns, name}, found && ns != "" && name != ""
		}
	}
	return "", workloadKey{}, false
}

// decides reports whether this node decides what key is about: of the alive members,
// the one with the highest rendezvous hash of its name and the key. Every node that
// sees the same members picks the same one; when views differ for a moment two may
// decide, and the decisions' merge keeps one.
func (c *core) decides(key string) bool {
	if c.notJoined != "" {
		return false
	}
	self := c.cfg.NodeName
	best, bestScore := self, rendezvous(self, key)
	for _, n := range c.view.Nodes {
		if !n.Alive || n.Name == self {
			continue
		}
		if s := rendezvous(n.Name, key); s > bestScore || s == bestScore && n.Name > best {
			best, bestScore = n.Name, s
		}
	}
	return best == self
}

func rendezvous(node, key string) uint64 {
	sum := sha256.Sum256([]byte(node + "\x00" + key))
	return binary.BigEndian.Uint64(sum[:8])
}

// judgeRollouts follows every Deployment whose desired spec has no verdict yet and
// records a verdict when one is due; it clears failure verdicts that a later commit
// made moot.
func (c *core) judgeRollouts() {
	if c.desired == nil || !c.adopted || c.notJoined != "" {
		return
	}
	for _, k := range c.desiredKeys {
		base := c.baseWorkloads[k]
		v := c.verdicts[k]
		if v.failed != nil && !v.failed.Cleared && v.failed.Hash != base.hash && c.movedOn(v.failed.Commit) && c.decides(decisionKey(failedPrefix, k)) {
			cleared := *v.failed
			cleared.Cleared = true
			c.log.Info("a later commit changed the Deployment: its failed spec is no longer held back", "workload", k.String(), "hash", v.failed.Hash)
			c.decide(decisionKey(failedPrefix, k), cleared)
		}
		if v.settled(base.hash) {
			delete(c.rollouts, k)
			continue
		}
		c.judge(k, base, v)
	}
	for k := range c.rollouts {
		if c.baseWorkloads[k] == nil {
			delete(c.rollouts, k)
		}
	}
}

// movedOn reports whether this node took commit in before the desired one: a node that
// has not fetched the commit of a verdict yet must not clear it.
func (c *core) movedOn(commit string) bool {
	i := slices.Index(c.recent, commit)
	return i >= 0 && i < len(c.recent)-1
}

// judge follows one rollout and records its verdict when it is due.
func (c *core) judge(k workloadKey, w *compiled, v verdicts) {
	t := c.rollouts[k]
	if t != nil && t.hash != w.hash && !t.doneSince.IsZero() && c.decides(decisionKey(goodPrefix, k)) {
		// A spec that ran in full and was settling when the next commit came: it is the
		// spec to go back to should the next one fail.
		c.log.Info("rollout succeeded", "workload", k.String(), "hash", t.hash, "took", c.now.Sub(t.started))
		c.decide(decisionKey(goodPrefix, k), goodVerdict{Hash: t.hash, Commit: t.commit, Started: t.started})
		c.rolloutStats.record(true, c.now.Sub(t.started))
		v = c.verdictsOf(k)
	}
	if t == nil || t.hash != w.hash {
		t = &rolloutTrack{hash: w.hash, commit: c.desired.Revision.Commit, started: c.now, progress: c.now}
		if c.rollouts == nil {
			c.rollouts = map[workloadKey]*rolloutTrack{}
		}
		c.rollouts[k] = t
	}
	n := c.rolloutCounts(k, w.hash)
	if n.updated > t.updated || n.ready > t.ready {
		t.progress = c.now
	}
	t.updated, t.ready = max(t.updated, n.updated), max(t.ready, n.ready)
	why, restarts := c.crashLoop(k, w.hash)
	if why != "" {
		c.fail(k, w, v, t, why)
		return
	}
	done := n.ready >= w.replicas && n.old == 0 && !c.placedShort(k)
	switch {
	case !done || restarts > t.restarts:
		t.doneSince = time.Time{}
	case t.doneSince.IsZero():
		t.doneSince = c.now
	}
	t.restarts = restarts
	if !c.decides(decisionKey(goodPrefix, k)) {
		return
	}
	switch {
	case done && c.now.Sub(t.doneSince) >= rolloutSettle:
		c.log.Info("rollout succeeded", "workload", k.String(), "hash", w.hash, "took", c.now.Sub(t.started))
		c.decide(decisionKey(goodPrefix, k), goodVerdict{Hash: w.hash, Commit: t.commit, Started: t.started})
		c.rolloutStats.record(true, c.now.Sub(t.started))
		delete(c.rollouts, k)
	case !done && c.now.Sub(t.progress) > w.progressDeadline:
		c.fail(k, w, v, t, fmt.Sprintf("progress deadline %s exceeded: %d/%d ready", w.progressDeadline, n.ready, w.replicas))
	}
}

// placedShort reports whether the plan left replicas of k unplaced.
func (c *core) placedShort(k workloadKey) bool { return len(c.unplaced[k]) > 0 }

// fail records a failure verdict for w's rollout, with the spec to go back to.
func (c *core) fail(k workloadKey, w *compiled, v verdicts, t *rolloutTrack, why string) {
	f := failedVerdict{Hash: w.hash, Commit: c.desired.Revision.Commit, Reason: why, Started: t.started}
	if w.autoRevert && v.good != nil && v.good.Hash != w.hash {
		f.RevertHash, f.RevertCommit = v.good.Hash, v.good.Commit
	}
	c.log.Warn("rollout failed", "workload", k.String(), "hash", w.hash, "reason", why, "revert_to", f.RevertHash)
	c.decide(decisionKey(failedPrefix, k), f)
	c.rolloutStats.record(false, c.now.Sub(t.started))
	delete(c.rollouts, k)
}

// crashLoop says why one of this node's instances of spec hash of k fails its rollout
// early, or "" when none does, and how often they restarted in all.
func (c *core) crashLoop(k workloadKey, hash string) (string, int) {
	total := 0
	var worst *instance // of those over the limit, the first by ID: the same reason every time
	for _, in := range c.instances {
		if in.namespace != k.namespace || in.workload != k.name || in.specHash != hash || in.stopping {
			continue
		}
		total += in.restarts()
		if (in.restarts() >= crashLimit || in.startFailures >= crashLimit) && (worst == nil || in.id < worst.id) {
			worst = in
		}
	}
	switch {
	case worst == nil:
		return "", total
	case worst.restarts() >= crashLimit:
		return fmt.Sprintf("%d restarts of %s: %s", worst.restarts(), worst.id, worst.lastExit()), total
	default:
		return fmt.Sprintf("%d failed starts of %s: %s", worst.startFailures, worst.id, worst.message), total
	}
}

// rolloutCounts counts k's instances across the cluster: those of spec hash (updated,
// and of them ready) and those of any other spec (old). An instance being stopped still
// runs until its stop returns.
func (c *core) rolloutCounts(k workloadKey, hash string) rolloutCounts {
	var n rolloutCounts
	add := func(specHash string, ready bool) {
		if specHash != hash {
			n.old++
			return
		}
		n.updated++
		if ready {
			n.ready++
		}
	}
	for _, in := range c.index.byWorkload[k] {
		if in.Node != c.cfg.NodeName && in.Running {
			add(in.SpecHash, in.Ready)
		}
	}
	for _, in := range c.instances {
		if in.namespace == k.namespace && in.workload == k.name && (in.created || in.busy) {
			add(in.specHash, !in.stopping && in.phase(c.now) == PhaseReady)
		}
	}
	return n
}

// rolloutWake is when a progress deadline passes, or a rollout has settled.
func (c *core) rolloutWake() time.Time {
	var wake time.Time
	soonest := func(at time.Time) {
		if wake.IsZero() || at.Before(wake) {
			wake = at
		}
	}
	for k, t := range c.rollouts {
		if !t.doneSince.IsZero() {
			soonest(t.doneSince.Add(rolloutSettle))
		} else if w := c.baseWorkloads[k]; w != nil {
			soonest(t.progress.Add(w.progressDeadline + time.Millisecond))
		}
	}
	return wake
}

// applyOverrides makes the compiled workloads those of the desired revision, except that a
// Deployment whose rollout failed runs the spec it goes back to. It asks the shell for
// the commits that spec comes from when the core does not have them.
func (c *core) applyOverrides() {
	if !c.overridesDue || c.desired == nil {
		return
	}
	c.overridesDue = false
	c.revertWaiting = false
	workloads := make(map[workloadKey]*compiled, len(c.baseWorkloads))
	var swapped []*spec.Deployment
	for k, w := range c.baseWorkloads {
		workloads[k] = w
		v := c.verdicts[k]
		if !v.holds(w.hash) || v.failed.RevertHash == "" || !w.autoRevert {
			continue
		}
		old := c.revertSpec(k, v.failed.RevertCommit, v.failed.RevertHash)
		if old == nil {
			// Until it is loaded, the failed spec must not roll out again (after a restart,
			// say); if it cannot be, it runs, and status says why.
			c.revertWaiting = c.revertWaiting || c.loading[v.failed.RevertCommit]
			continue
		}
		workloads[k] = old
		swapped = append(swapped, old.d)
	}
	changed := len(workloads) != len(c.workloads)
	for k, w := range workloads {
		changed = changed || c.workloads[k] != w
	}
	c.workloads = workloads
	c.effective = *c.desired
	if len(swapped) > 0 {
		set := *c.desired.Objects
		set.Deployments = slices.Clone(set.Deployments)
		for _, d := range swapped {
			// The set is sorted by namespace and name, as keys are; swapped ones come from it.
			i, found := slices.BinarySearchFunc(set.Deployments, d, func(a, b *spec.Deployment) int {
				return cmp.Or(cmp.Compare(a.Metadata.Namespace, b.Metadata.Namespace), cmp.Compare(a.Metadata.Name, b.Metadata.Name))
			})
			if found {
				set.Deployments[i] = d
			}
		}
		c.effective.Objects = &set
	}
	if changed {
		c.services = matchServices(c.effective.Objects, c.workloads)
		c.index.workloads = nil
		c.planDue = true
	}
}

// revertSpec is Deployment k compiled from commit, which must have spec hash; nil while
// the commit is being loaded, or when it cannot be (the failure is in status).
func (c *core) revertSpec(k workloadKey, commit, hash string) *compiled {
	ck := commitWorkload{commit, k}
	if w := c.reverts[ck]; w != nil {
		return w
	}
	d, ok := c.commits[commit]
	switch {
	case !ok && !isCommitSHA(commit):
		c.revertErrors[commit] = fmt.Sprintf("%q is not a commit SHA", commit)
		return nil
	case !ok:
		if !c.loading[commit] {
			if c.loading == nil {
				c.loading = map[string]bool{}
			}
			c.loading[commit] = true
			c.rd.loadCommits = append(c.rd.loadCommits, commit)
		}
		return nil
	case d == nil:
		return nil // it could not be loaded; revertError says why
	}
	all := compile(d, c.cfg.Network.On())
	w := all[k]
	if w == nil || w.hash != hash {
		c.revertErrors[commit] = fmt.Sprintf("commit %s has no Deployment %s with spec %s", short(commit), k, hash)
		return nil
	}
	w.commit = commit
	if c.reverts == nil {
		c.reverts = map[commitWorkload]*compiled{}
	}
	c.reverts[ck] = w
	return w
}

// commitWorkload names a Deployment of one commit.
type commitWorkload struct {
	commit string
	k      workloadKey
}

// onCommitLoaded takes in an earlier commit the shell loaded for a revert.
func (c *core) onCommitLoaded(ev commitLoadedEvent) {
	delete(c.loading, ev.commit)
	if c.commits == nil {
		c.commits = map[string]*spec.Desired{}
	}
	if ev.err != nil {
		c.log.Error("loading the commit to revert to failed", "commit", ev.commit, "err", ev.err)
		c.revertErrors[ev.commit] = fmt.Sprintf("commit %s could not be loaded: %v", short(ev.commit), ev.err)
		c.commits[ev.commit] = nil
		c.retryLoadAt = c.now.Add(30 * time.Second)
	} else {
		c.commits[ev.commit] = ev.desired
	}
	c.overridesDue = true
}

// keepCommit remembers a revision the core accepted: its commit among the recent ones
// (movedOn), and its content while it is one of the keptCommits newest or a verdict
// names it, so that a revert to it needs no Git.
func (c *core) keepCommit(d *spec.Desired) {
	if c.commits == nil {
		c.commits = map[string]*spec.Desired{}
	}
	c.commits[d.Revision.Commit] = d
	c.recent = append(c.recent, d.Revision.Commit)
	if len(c.recent) > rememberedCommits {
		c.recent = slices.Delete(c.recent, 0, 1)
	}
	wanted := map[string]bool{}
	for _, v := range c.verdicts {
		if v.good != nil {
			wanted[v.good.Commit] = true
		}
		if v.failed != nil {
			wanted[v.failed.RevertCommit] = true
		}
	}
	for _, commit := range c.recent[max(0, len(c.recent)-keptCommits):] {
		wanted[commit] = true
	}
	for commit := range c.commits {
		if !wanted[commit] && c.commits[commit] != nil {
			delete(c.commits, commit)
		}
	}
	for ck := range c.reverts {
		if !wanted[ck.commit] {
			delete(c.reverts, ck)
		}
	}
}

// keptCommits is how many recent revisions the core keeps the content of for reverts;
// rememberedCommits how many it remembers it took in.
const (
	keptCommits       = 4
	rememberedCommits = 64
)

// retryFailedLoads forgets commits that could not be loaded, once their retry is due.
func (c *core) retryFailedLoads() {
	if c.retryLoadAt.IsZero() || c.now.Before(c.retryLoadAt) {
		return
	}
	c.retryLoadAt = time.Time{}
	for commit, d := range c.commits {
		if d == nil {
			delete(c.commits, commit)
			delete(c.revertErrors, commit)
			c.overridesDue = true
		}
	}
}

// isCommitSHA reports whether s is a full hex SHA-1 or SHA-256 commit name.
func isCommitSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

func (k workloadKey) String() string { return k.namespace + "/" + k.name }
