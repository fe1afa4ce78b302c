package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shoalhq/shoal/spec"
)

// Commit fates, as status, `shoal rollout status` and commit statuses say them.
const (
	CommitProgressing = "progressing"
	CommitSucceeded   = "succeeded"
	CommitFailed      = "failed"
	CommitSuperseded  = "superseded"
)

// Workload rollout states within a commit.
const (
	WorkloadUnchanged   = "unchanged"
	WorkloadProgressing = "progressing"
	WorkloadSucceeded   = "succeeded"
	WorkloadFailed      = "failed"
	WorkloadReverted    = "reverted"
)

// maxTrackedCommits bounds the commits whose fate the node follows.
const maxTrackedCommits = 16

// maxReportTries is how many times one transition is sent before the node gives up on it
// (each Send retries by itself until the sink accepts or refuses for good).
const maxReportTries = 5

// CommitStatus is the fate of one commit the node fetched, served at /rollouts.
type CommitStatus struct {
	Commit       string `json:"commit"`
	Message      string `json:"message,omitempty"`
	State        string `json:"state"`
	Reason       string `json:"reason,omitempty"`
	SupersededBy string `json:"supersededBy,omitempty"`
	// Errors are the first errors of a rejected commit, "file:line: field: message".
	Errors    []string             `json:"errors,omitempty"`
	Nodes     CommitNodes          `json:"nodes"`
	Workloads []WorkloadRollout    `json:"workloads"`
	Fetched   time.Time            `json:"fetched"`
	Decided   time.Time            `json:"decided,omitzero"`
	changed   map[workloadKey]bool `json:"-"`
}

// CommitNodes counts the alive nodes and those that applied the commit.
type CommitNodes struct {
	Total   int `json:"total"`
	Applied int `json:"applied"`
}

// WorkloadRollout is one Deployment's rollout within a commit.
type WorkloadRollout struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	State     string `json:"state"`
	Replicas  int    `json:"replicas"`
	// Updated counts the instances of the commit's spec, Ready those of them ready, Old
	// the instances of any other spec that still run.
	Updated int    `json:"updated"`
	Ready   int    `json:"ready"`
	Old     int    `json:"old"`
	Waiting string `json:"waiting,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// SpecHash is the commit's spec; RevertedTo the spec that runs instead after a revert.
	SpecHash   string `json:"specHash,omitempty"`
	RevertedTo string `json:"revertedTo,omitempty"`
	// Decided is when the verdict (succeeded or failed) was made, and DecidedBy by which node.
	Decided   time.Time `json:"decided,omitzero"`
	DecidedBy string    `json:"decidedBy,omitempty"`
}

// Report is one transition of a commit's fate, for the shell to send to the configured
// commit status sinks (GitHub, GitLab, a webhook).
type Report struct {
	Commit      string
	State       string // pending, or a final CommitSucceeded, CommitFailed, CommitSuperseded
	Description string
	Errors      []string
	Workloads   []WorkloadRollout
}

// reportState follows the commits this node fetched.
type reportState struct {
	// commits are the fetched commits, oldest first, at most maxTrackedCommits.
	commits []*CommitStatus
	// inflight are the transitions being sent; tries how often each was sent.
	inflight map[string]bool
	tries    map[string]int
	retryAt  map[string]time.Time
	wake     time.Time
}

// reportReceipts is the body of a node's report/NODE decision: the transitions it sent
// last, oldest first, at most maxReceipts (one key per node, so that receipts never
// crowd verdicts out of gossip's per-author bound).
type reportReceipts struct {
	Sent []reportReceipt `json:"sent"`
}

// reportReceipt is one transition sent.
type reportReceipt struct {
	Commit string `json:"commit"`
	State  string `json:"state"`
}

// maxReceipts is how many transitions a node's receipts remember; with the commits a node
// follows (maxTrackedCommits) they cover every transition it could still send.
const maxReceipts = 12

// sentStates is every state any node says it sent for commit.
func (c *core) sentStates(commit string) []string {
	var out []string
	for key, d := range c.decisions {
		if !strings.HasPrefix(key, reportPrefix) {
			continue
		}
		var r reportReceipts
		if json.Unmarshal(d.Body, &r) != nil {
			continue
		}
		for _, s := range r.Sent {
			if s.Commit == commit {
				out = append(out, s.State)
			}
		}
	}
	return out
}

// fetched starts following a commit: accepted (desired) or rejected (diags).
func (c *core) fetched(rev spec.Revision, diags spec.Diagnostics) {
	rs := &c.reports
	for _, cs := range rs.commits {
		if cs.Commit == rev.Commit {
			return
		}
	}
	cs := &CommitStatus{Commit: rev.Commit, Message: firstLine(rev.Message), State: CommitProgressing, Fetched: c.now}
	if diags.HasErrors() {
		cs.State, cs.Decided = CommitFailed, c.now
		for i, d := range diags.Errors() {
			if i == 5 {
				break
			}
			cs.Errors = append(cs.Errors, d.String())
		}
		cs.Reason = "rejected: " + cs.Errors[0]
	} else {
		cs.changed = map[workloadKey]bool{}
		for k, w := range c.baseWorkloads {
			if prev := c.prevHashes[k]; prev != w.hash {
				cs.changed[k] = true
			}
		}
	}
	for _, old := range rs.commits {
		if old.State == CommitProgressing && !diags.HasErrors() {
			old.State, old.SupersededBy, old.Decided = CommitSuperseded, rev.Commit, c.now
		}
	}
	rs.commits = append(rs.commits, cs)
	if len(rs.commits) > maxTrackedCommits {
		rs.commits = slices.Delete(rs.commits, 0, 1)
	}
}

// trackReports brings the newest accepted commit's fate up to date and decides which
// transitions this node reports.
func (c *core) trackReports() {
	rs := &c.reports
	rs.wake = time.Time{}
	for id := range rs.tries { // transitions of commits no longer followed
		commit, _, _ := strings.Cut(id, "/")
		if !slices.ContainsFunc(rs.commits, func(cs *CommitStatus) bool { return cs.Commit == commit }) {
			delete(rs.tries, id)
			delete(rs.retryAt, id)
		}
	}
	rejudge := c.verdictsChanged
	c.verdictsChanged = false
	for _, cs := range rs.commits {
		// The desired commit is judged while it progresses, and again when a verdict
		// changed: two sides of a partition may have judged it differently.
		judged := cs.State == CommitSucceeded || cs.State == CommitFailed && len(cs.Errors) == 0
		if c.desired != nil && cs.Commit == c.desired.Revision.Commit && (cs.State == CommitProgressing || rejudge && judged) {
			c.judgeCommit(cs)
		}
		if c.cfg.Reports {
			c.reportDue(cs)
		}
	}
}

// judgeCommit works out the fate of the desired commit from its Deployments' verdicts
// and the nodes that applied it.
func (c *core) judgeCommit(cs *CommitStatus) {
	cs.Workloads = cs.Workloads[:0]
	failed, done := "", true
	for _, k := range c.desiredKeys {
		wr := c.workloadRollout(k, cs.changed[k])
		cs.Workloads = append(cs.Workloads, wr)
		if !cs.changed[k] {
			continue // the commit's fate is that of what it changed
		}
		switch wr.State {
		case WorkloadFailed, WorkloadReverted:
			if failed == "" {
				failed = k.String() + ": " + wr.Reason
			}
		case WorkloadProgressing:
			done = false
		}
	}
	cs.Nodes = c.commitNodes(cs.Commit)
	state, reason := CommitProgressing, ""
	switch {
	case failed != "":
		state, reason = CommitFailed, failed
	case done && (len(cs.changed) > 0 || cs.Nodes.Applied == cs.Nodes.Total):
		// A Deployment's success verdict says every replica of it serves, wherever it runs;
		// a commit that changed none (a Service, say) is done once every node applied it.
		state = CommitSucceeded
	}
	if state != cs.State {
		cs.Decided = c.now
	}
	cs.State, cs.Reason = state, reason
}

// workloadRollout is Deployment k's rollout to its desired spec.
func (c *core) workloadRollout(k workloadKey, changed bool) WorkloadRollout {
	base := c.baseWorkloads[k]
	n := c.rolloutCounts(k, base.hash)
	wr := WorkloadRollout{Namespace: k.namespace, Name: k.name, Replicas: base.replicas, SpecHash: base.hash,
		Updated: n.updated, Ready: n.ready, Old: n.old}
	v := c.verdicts[k]
	switch {
	case v.holds(base.hash):
		wr.State, wr.Reason, wr.Decided, wr.DecidedBy = WorkloadFailed, v.failed.Reason, v.failedAt, v.failedBy
		if w := c.workloads[k]; w != base && w != nil {
			wr.State, wr.RevertedTo = WorkloadReverted, w.hash
			wr.Reason += "; reverted to " + w.hash + " of " + short(w.commit)
		} else if v.failed.RevertHash != "" && base.autoRevert {
			wr.Waiting = c.revertWait(v.failed.RevertCommit)
		}
	case v.good != nil && v.good.Hash == base.hash:
		wr.State, wr.Decided, wr.DecidedBy = WorkloadSucceeded, v.goodAt, v.goodBy
		if !changed {
			wr.State = WorkloadUnchanged
		}
	default:
		wr.State, wr.Waiting = WorkloadProgressing, c.waitingFor(k, base, n)
	}
	return wr
}

// inRollout reports whether Deployment k's desired spec has not rolled out in full: it
// is rolling out, or failed. Status shows the rollout of those only.
func (c *core) inRollout(k workloadKey) bool {
	w := c.baseWorkloads[k]
	if w == nil {
		return false
	}
	v := c.verdicts[k]
	return v.good == nil || v.good.Hash != w.hash
}

// revertWait says what a revert waits for.
func (c *core) revertWait(commit string) string {
	if why := c.revertErrors[commit]; why != "" {
		return "cannot revert: " + why
	}
	return "loading commit " + short(commit) + " to revert to"
}

// waitingFor says which step a rollout waits for.
func (c *core) waitingFor(k workloadKey, w *compiled, n rolloutCounts) string {
	switch {
	case len(c.unplaced[k]) > 0:
		u := c.unplaced[k][0]
		return fmt.Sprintf("%d replicas unplaced: %s", len(c.unplaced[k])+u.More, u.Reason)
	case n.updated < w.replicas:
		return fmt.Sprintf("%d of %d instances of the new spec started", n.updated, w.replicas)
	case n.ready < w.replicas:
		return fmt.Sprintf("%d more instances of the new spec to become ready", w.replicas-n.ready)
	case n.old > 0:
		return fmt.Sprintf("%d old instances to stop", n.old)
	}
	return "the verdict"
}

// commitNodes counts the alive members and those whose applied revision is commit.
func (c *core) commitNodes(commit string) CommitNodes {
	n := CommitNodes{Total: 1}
	if c.applied != nil && c.applied.Commit == commit {
		n.Applied++
	}
	for _, m := range c.view.Nodes {
		if m.Alive && m.Name != c.cfg.NodeName {
			n.Total++
			if m.Revision == commit {
				n.Applied++
			}
		}
	}
	return n
}

// reportState is the state a commit status sink is told.
func reportStateOf(cs *CommitStatus) string {
	if cs.State == CommitProgressing {
		return "pending"
	}
	return cs.State
}

// reportDue hands the shell the commit's transition to send when this node is its
// reporter and nobody sent it yet.
func (c *core) reportDue(cs *CommitStatus) {
	rs := &c.reports
	state := reportStateOf(cs)
	id := cs.Commit + "/" + state
	if rs.inflight[id] || rs.tries[id] >= maxReportTries || !c.decides(reportPrefix+cs.Commit) {
		return
	}
	if at := rs.retryAt[id]; at.After(c.now) {
		if rs.wake.IsZero() || at.Before(rs.wake) {
			rs.wake = at
		}
		return
	}
	for _, sent := range c.sentStates(cs.Commit) {
		if sent == state || sent != "pending" {
			return // sent already; once a final state was, nothing more is sent
		}
	}
	if rs.inflight == nil {
		rs.inflight, rs.tries, rs.retryAt = map[string]bool{}, map[string]int{}, map[string]time.Time{}
	}
	rs.inflight[id] = true
	rs.tries[id]++
	desc := cs.Reason
	switch {
	case state == "pending":
		desc = "rolling out"
	case state == CommitSucceeded:
		desc = fmt.Sprintf("serving on %d nodes", cs.Nodes.Total)
	case state == CommitSuperseded:
		desc = "superseded by " + short(cs.SupersededBy) + " before it finished"
	}
	c.rd.reports = append(c.rd.reports, Report{Commit: cs.Commit, State: state, Description: desc,
		Errors: slices.Clone(cs.Errors), Workloads: changedOnly(cs)})
}

// changedOnly is the rollouts of the Deployments a commit changed.
func changedOnly(cs *CommitStatus) []WorkloadRollout {
	var out []WorkloadRollout
	for _, wr := range cs.Workloads {
		if cs.changed[workloadKey{wr.Namespace, wr.Name}] {
			out = append(out, wr)
		}
	}
	return out
}

// onReported records a transition sent, for every node to see, or schedules it again.
func (c *core) onReported(ev reportedEvent) {
	rs := &c.reports
	id := ev.report.Commit + "/" + ev.report.State
	delete(rs.inflight, id)
	if ev.err != nil {
		c.log.Error("commit status not sent", "commit", ev.report.Commit, "state", ev.report.State, "err", ev.err)
		rs.retryAt[id] = c.now.Add(time.Minute)
		return
	}
	c.log.Info("commit status sent", "commit", ev.report.Commit, "state", ev.report.State)
	key := reportPrefix + c.cfg.NodeName
	var r reportReceipts
	if d, ok := c.decisions[key]; ok {
		_ = json.Unmarshal(d.Body, &r) // this node's own, from before a restart; empty if unreadable
	}
	r.Sent = append(r.Sent, reportReceipt{Commit: ev.report.Commit, State: ev.report.State})
	if len(r.Sent) > maxReceipts {
		r.Sent = r.Sent[len(r.Sent)-maxReceipts:]
	}
	c.decide(key, r)
}

// commitStatuses is what status shows of the followed commits, newest first.
func (c *core) commitStatuses() []CommitStatus {
	out := make([]CommitStatus, 0, len(c.reports.commits))
	for i := len(c.reports.commits) - 1; i >= 0; i-- {
		cs := *c.reports.commits[i]
		cs.Workloads = slices.Clone(cs.Workloads)
		out = append(out, cs)
	}
	return out
}

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// RolloutStats counts the rollouts this node decided, for /metrics.
type RolloutStats struct {
	Succeeded, Failed uint64
	// Buckets counts the durations up to each of RolloutBuckets; Sum totals them in seconds.
	Buckets []uint64
	Sum     float64
}

// RolloutBuckets are the upper bounds, in seconds, of the rollout duration histogram.
var RolloutBuckets = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}

func (s *RolloutStats) record(ok bool, d time.Duration) {
	if ok {
		s.Succeeded++
	} else {
		s.Failed++
	}
	if s.Buckets == nil {
		s.Buckets = make([]uint64, len(RolloutBuckets))
	}
	secs := d.Seconds()
	s.Sum += secs
	for i, b := range RolloutBuckets {
		if secs <= b {
			s.Buckets[i]++
		}
	}
}
