package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoalhq/shoal/gossip"
	"github.com/shoalhq/shoal/spec"
)

// crashing makes hello exit with code 1 right after it starts.
const crashing = "        env:\n        - {name: EXIT_AFTER, value: 10ms}\n        - {name: EXIT_CODE, value: \"1\"}\n"

// withSpec adds lines to a Deployment's spec, after its replicas.
func withSpec(manifest, lines string) string {
	i := strings.Index(manifest, "  replicas: ")
	j := i + strings.Index(manifest[i:], "\n") + 1
	return manifest[:j] + lines + manifest[j:]
}

// withAnnotation adds an annotation to a Deployment's metadata.
func withAnnotation(manifest, key, value string) string {
	return strings.Replace(manifest, "metadata:\n", "metadata:\n  annotations: {"+key+": \""+value+"\"}\n", 1)
}

// noSurge rolls one instance at a time and never below the replica count.
const noSurge = "  minReadySeconds: 1\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n"

// recorder is a Reporter that records what it is asked to send.
type recorder struct {
	mu      gosync.Mutex
	reports []Report
}

func (r *recorder) Send(_ context.Context, rep Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
	return nil
}

func (r *recorder) states(commit string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rep := range r.reports {
		if rep.Commit == commit {
			out = append(out, rep.State)
		}
	}
	return out
}

func commitState(st *Status, commit string) *CommitStatus {
	for i := range st.Commits {
		if st.Commits[i].Commit == commit {
			return &st.Commits[i]
		}
	}
	return nil
}

func commitIs(commit, state string) func(*Status) bool {
	return func(st *Status) bool {
		cs := commitState(st, commit)
		return cs != nil && cs.State == state
	}
}

// TestCrashingRolloutIsRevertedAndHeldBack: a new spec whose instances crash is judged
// failed after crashLimit restarts, the Deployment goes back to the spec that was ready
// (whose instances never stopped: maxUnavailable 0), the commit is reported failed, and
// a commit that changes only another Deployment leaves the failed spec held back.
func TestCrashingRolloutIsRevertedAndHeldBack(t *testing.T) {
	rec := &recorder{}
	h := newHarnessOpts(t, nil, nil, []Option{WithReporter(rec)})
	web := func(image, extra string) string { return withSpec(deployment("web", image, 2, extra), noSurge) }
	c1 := h.push(map[string]string{"web.yaml": web("hello:v1", "")})
	h.waitFor("v1 ready", readyWith("web", 2, "hello:v1"))
	h.waitFor("commit 1 succeeded", commitIs(c1.Commit, CommitSucceeded))
	before := pids(t, h.fake)

	c2 := h.push(map[string]string{"web.yaml": web("hello:v2", crashing)})
	st := h.waitFor("commit 2 failed and reverted", func(st *Status) bool {
		cs := commitState(st, c2.Commit)
		return cs != nil && cs.State == CommitFailed && readyWith("web", 2, "hello:v1")(st)
	})
	cs := commitState(st, c2.Commit)
	if !strings.Contains(cs.Reason, "restarts of web-") || !strings.Contains(cs.Reason, "Error (exit 1)") || !strings.Contains(cs.Reason, "reverted to") {
		t.Errorf("commit 2 reason = %q, want the restarts, the exit and the revert", cs.Reason)
	}
	if r := workload(st, "web").Rollout; r == nil || r.State != WorkloadReverted {
		t.Errorf("web rollout = %+v, want reverted", r)
	}
	after := pids(t, h.fake)
	for id, pid := range before {
		if after[id] != pid {
			t.Errorf("v1 instance %s was restarted or stopped during the failed rollout (pid %d → %d)", id, pid, after[id])
		}
	}

	// A commit that changes only another Deployment: web stays on v1.
	c3 := h.push(map[string]string{"web.yaml": web("hello:v2", crashing), "api.yaml": deployment("api", "hello:v1", 1, "")})
	h.waitFor("commit 3 succeeded", commitIs(c3.Commit, CommitSucceeded))
	st = h.waitFor("api ready, web on v1", func(st *Status) bool {
		return readyWith("api", 1, "hello:v1")(st) && readyWith("web", 2, "hello:v1")(st)
	})
	for _, wr := range commitState(st, c3.Commit).Workloads {
		if wr.Name == "web" && wr.State != WorkloadReverted {
			t.Errorf("web in commit 3 = %s, want still reverted", wr.State)
		}
	}

	// The next good commit rolls out normally.
	c4 := h.push(map[string]string{"web.yaml": web("hello:v2", ""), "api.yaml": deployment("api", "hello:v1", 1, "")})
	h.waitFor("commit 4 succeeded with web on v2", func(st *Status) bool {
		return commitIs(c4.Commit, CommitSucceeded)(st) && readyWith("web", 2, "hello:v2")(st)
	})
	h.waitFor("reports sent", func(*Status) bool { return len(rec.states(c4.Commit)) == 2 })
	for commit, want := range map[string][]string{
		c1.Commit: {"pending", "succeeded"},
		c2.Commit: {"pending", "failed"},
		c3.Commit: {"pending", "succeeded"},
		c4.Commit: {"pending", "succeeded"},
	} {
		if got := rec.states(commit); !slices.Equal(got, want) {
			t.Errorf("reports of commit %s = %v, want %v", short(commit), got, want)
		}
	}
}

// TestProgressDeadlineRevertsAndAnnotationTurnsItOff: a rollout that makes no progress
// for progressDeadlineSeconds fails; it is reverted unless the Deployment says not to.
func TestProgressDeadlineRevertsAndAnnotationTurnsItOff(t *testing.T) {
	h := newHarness(t, nil)
	huge := "        resources: {requests: {cpu: \"100\"}}\n" // no node has 100 cores: never placed
	web := func(image, extra string) string {
		return withSpec(deployment("web", image, 1, extra), noSurge+"  progressDeadlineSeconds: 2\n")
	}
	h.push(map[string]string{"web.yaml": web("hello:v1", ""), "api.yaml": deployment("api", "hello:v1", 1, "")})
	h.waitFor("v1 ready", readyWith("web", 1, "hello:v1"))
	h.waitFor("rollouts settled", func(st *Status) bool { return workload(st, "web").Rollout == nil })

	c2 := h.push(map[string]string{"web.yaml": web("hello:v2", huge), "api.yaml": deployment("api", "hello:v1", 1, "")})
	st := h.waitFor("deadline passed, reverted", commitIs(c2.Commit, CommitFailed))
	if r := workload(st, "web").Rollout; r == nil || !strings.Contains(r.Reason, "progress deadline 2s exceeded: 0/1 ready") || r.State != WorkloadReverted {
		t.Errorf("web rollout = %+v, want reverted after the progress deadline", r)
	}
	if len(workload(st, "web").Unplaced) != 0 {
		t.Errorf("reverted web still has unplaced replicas: %+v", workload(st, "web").Unplaced)
	}
	if st.Rollouts.Failed != 1 || st.Rollouts.Succeeded < 2 {
		t.Errorf("rollout counts = %+v, want 1 failed and the first two succeeded", st.Rollouts)
	}

	// Without auto-revert the failed rollout stays where it is.
	off := withAnnotation(web("hello:v2", huge+"        env: [{name: X, value: \"1\"}]\n"), AutoRevertAnnotation, "false")
	c3 := h.push(map[string]string{"web.yaml": off, "api.yaml": deployment("api", "hello:v1", 1, "")})
	st = h.waitFor("commit 3 failed", commitIs(c3.Commit, CommitFailed))
	if r := workload(st, "web").Rollout; r == nil || r.State != WorkloadFailed || r.RevertedTo != "" {
		t.Errorf("web rollout = %+v, want failed without a revert", r)
	}
	if len(workload(st, "web").Unplaced) == 0 {
		t.Errorf("web without auto-revert should still want its new spec (unplaced)")
	}
}

// TestFailedSpecIsTriedAgainWhenCommittedAgain: once a later commit changed the
// Deployment, committing the failed spec again is a new rollout, judged anew.
func TestFailedSpecIsTriedAgainWhenCommittedAgain(t *testing.T) {
	h := newHarness(t, nil)
	web := func(image, extra string) string { return withSpec(deployment("web", image, 1, extra), noSurge) }
	h.push(map[string]string{"web.yaml": web("hello:v1", "")})
	h.waitFor("v1 ready", readyWith("web", 1, "hello:v1"))
	c2 := h.push(map[string]string{"web.yaml": web("hello:v2", crashing)})
	h.waitFor("v2 failed", commitIs(c2.Commit, CommitFailed))
	c3 := h.push(map[string]string{"web.yaml": web("hello:v1", "")}) // git revert
	h.waitFor("revert commit succeeded", commitIs(c3.Commit, CommitSucceeded))
	c4 := h.push(map[string]string{"web.yaml": web("hello:v2", crashing)})
	st := h.waitFor("v2 judged again and failed again", commitIs(c4.Commit, CommitFailed))
	if st.Rollouts.Failed != 2 {
		t.Errorf("failed rollouts = %d, want 2 (the spec was tried again)", st.Rollouts.Failed)
	}
}

// TestVerdictsMergeLatestWins: decisions are max-registers, whatever order they come in,
// and what a hostile or broken body says is ignored.
func TestVerdictsMergeLatestWins(t *testing.T) {
	t0 := time.Unix(1000, 0)
	body := func(v any) []byte { b, _ := json.Marshal(v); return b }
	a := gossip.Decision{Key: "failed/default/web", Author: "a", Time: t0, Body: body(failedVerdict{Hash: "h2", Reason: "x"})}
	b := gossip.Decision{Key: "failed/default/web", Author: "b", Time: t0, Body: body(failedVerdict{Hash: "h2", Reason: "y"})}
	later := gossip.Decision{Key: "failed/default/web", Author: "a", Time: t0.Add(time.Second), Body: body(failedVerdict{Hash: "h2", Cleared: true})}
	junk := gossip.Decision{Key: "good/default/api", Author: "c", Time: t0, Body: []byte("{not json")}
	badKey := gossip.Decision{Key: "good/nonamespace", Author: "c", Time: t0, Body: body(goodVerdict{Hash: "h"})}
	for _, order := range [][]gossip.Decision{{a, b, later, junk, badKey}, {later, b, a, badKey, junk}, {b, junk, a, later}} {
		c := newCore(DefaultConfig("n"), true, DNSConfig{})
		c.onDecisions(order)
		c.refreshVerdicts()
		v := c.verdicts[workloadKey{"default", "web"}]
		if v.failed == nil || !v.failed.Cleared || v.holds("h2") {
			t.Errorf("order %v: verdict %+v, want the later, cleared one", order, v.failed)
		}
		if _, ok := c.verdicts[workloadKey{"default", "api"}]; ok && c.verdicts[workloadKey{"default", "api"}].good != nil {
			t.Errorf("a body that is not JSON was taken as a verdict")
		}
	}
	c := newCore(DefaultConfig("n"), true, DNSConfig{})
	c.onDecisions([]gossip.Decision{a, b})
	if got := c.decisions[a.Key].Author; got != "b" {
		t.Errorf("tie at the same time went to %q, want the greater author b", got)
	}
}

// TestDeciderIsTheSameEverywhere: every node that sees the same members picks the same
// decider for a key, and keys spread over the members.
func TestDeciderIsTheSameEverywhere(t *testing.T) {
	names := []string{"n1", "n2", "n3", "n4"}
	view := gossip.View{}
	for _, n := range names {
		view.Nodes = append(view.Nodes, gossip.NodeInfo{Name: n, Alive: true})
	}
	chosen := map[string]int{}
	for _, key := range []string{"good/default/a", "good/default/b", "good/default/c", "good/default/d", "good/x/y", "report/123", "report/456", "failed/default/a"} {
		deciders := 0
		for _, n := range names {
			c := newCore(DefaultConfig(n), true, DNSConfig{})
			c.view = view
			if c.decides(key) {
				deciders++
				chosen[n]++
			}
		}
		if deciders != 1 {
			t.Errorf("key %s has %d deciders, want 1", key, deciders)
		}
	}
	if len(chosen) < 2 {
		t.Errorf("every key went to one node: %v", chosen)
	}
}

// TestPartitionSidesAgreeAfterHeal: two sides of a partition judged one rollout
// differently — one failed it and reverted, the other called it good. Once they heal,
// every node holds both verdicts and follows the later one, whatever order they came in.
func TestPartitionSidesAgreeAfterHeal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	body := func(v any) []byte { b, _ := json.Marshal(v); return b }
	failed := gossip.Decision{Key: "failed/default/web", Author: "n1", Time: t0,
		Body: body(failedVerdict{Hash: "h2", Reason: "3 restarts", RevertHash: "h1", RevertCommit: "c1"})}
	for _, tc := range []struct {
		goodAt time.Time
		revert bool
	}{
		{t0.Add(time.Second), false}, // the success is later: both sides roll forward
		{t0.Add(-time.Second), true}, // the failure is later: both sides revert
		{t0, false},                  // same millisecond: the greater author (n3) wins
	} {
		good := gossip.Decision{Key: "good/default/web", Author: "n3", Time: tc.goodAt, Body: body(goodVerdict{Hash: "h2", Commit: "c2"})}
		for _, order := range [][]gossip.Decision{{failed, good}, {good, failed}} {
			c := newCore(DefaultConfig("n2"), true, DNSConfig{})
			c.onDecisions(order)
			c.refreshVerdicts()
			if got := c.verdicts[workloadKey{"default", "web"}].holds("h2"); got != tc.revert {
				t.Errorf("good at %v, order %v: failure holds = %v, want %v", tc.goodAt.Sub(t0), []string{order[0].Author, order[1].Author}, got, tc.revert)
			}
		}
	}
}

// blockingLoader is a CommitLoader that answers once released, from the revisions given.
type blockingLoader struct {
	release chan struct{}
	commits map[string]*spec.Desired
	asked   atomic.Int32
}

func (l *blockingLoader) LoadCommit(ctx context.Context, commit string) (*spec.Desired, error) {
	l.asked.Add(1)
	select {
	case <-l.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d := l.commits[commit]; d != nil {
		return d, nil
	}
	return nil, errors.New("no such commit")
}

// TestRestartedAgentHoldsTheFailedSpecBack: an agent restarted while a Deployment is
// reverted learns the verdict (from its decisions file) and does not roll the failed spec
// out again while it loads the commit it goes back to; once loaded, the old instances it
// adopted keep running untouched.
func TestRestartedAgentHoldsTheFailedSpecBack(t *testing.T) {
	file := filepath.Join(t.TempDir(), "decisions.json")
	h := newHarnessOpts(t, nil, nil, []Option{WithDecisionsFile(file)})
	web := func(image, extra string) string { return withSpec(deployment("web", image, 2, extra), noSurge) }
	good := map[string]string{"web.yaml": web("hello:v1", "")}
	bad := map[string]string{"web.yaml": web("hello:v2", crashing)}
	c1 := h.push(good)
	h.waitFor("v1 ready", readyWith("web", 2, "hello:v1"))
	c2 := h.push(bad)
	h.waitFor("v2 reverted", func(st *Status) bool {
		return commitIs(c2.Commit, CommitFailed)(st) && readyWith("web", 2, "hello:v1")(st)
	})
	before := pids(t, h.fake)
	h.stop()

	loader := &blockingLoader{release: make(chan struct{}), commits: map[string]*spec.Desired{c1.Commit: loadFiles(t, c1, good)}}
	h2 := newHarnessOpts(t, h.fake.Reopen(), nil, []Option{WithDecisionsFile(file), WithCommitLoader(loader)})
	h2.commit = h.commit - 1
	h2.push(bad) // the same commit again, as the poller would hand it over after a restart
	deadline := time.Now().Add(5 * time.Second)
	for loader.asked.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if loader.asked.Load() == 0 {
		t.Fatal("the restarted agent did not ask for the commit to go back to")
	}
	time.Sleep(300 * time.Millisecond) // what it would start meanwhile, it would have
	for id := range pids(t, h.fake) {
		if before[id] == 0 {
			t.Fatalf("%s started while the spec to go back to was loading: the failed spec rolled out again", id)
		}
	}
	close(loader.release)
	h2.waitFor("v1 adopted and kept", readyWith("web", 2, "hello:v1"))
	if after := pids(t, h.fake); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("instances changed across the restart: before %v, after %v", before, after)
	}
}

// loadFiles loads files as the revision rev.
func loadFiles(t *testing.T, rev spec.Revision, files map[string]string) *spec.Desired {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	set, diags := spec.Load(fsys, spec.DefaultLoadOptions())
	if set == nil || diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	return &spec.Desired{Revision: rev, Objects: set}
}

// TestReadinessViewsBeforeAnyPlan: views in which another node's instance changes only in
// readiness may come before this node has planned anything (just restarted, not adopted
// yet, or waiting for a revision); they must not crash the agent. (A kill -9 of an agent
// during a rollout crashed it here once.)
func TestReadinessViewsBeforeAnyPlan(t *testing.T) {
	c := newCore(DefaultConfig("a"), true, DNSConfig{})
	view := func(ready bool) gossip.View {
		return gossip.View{
			Nodes:  []gossip.NodeInfo{{Name: "a", Alive: true}, {Name: "b", Alive: true}},
			Owners: []gossip.OwnerInstances{{Node: "b", Instances: []gossip.InstanceInfo{{ID: "web-1-0", Namespace: "default", Workload: "web", Node: "b", SpecHash: "1", Running: true, Ready: ready}}}},
		}
	}
	now := time.Unix(1000, 0)
	c.Step(viewEvent{view(false)}, now)
	c.Step(viewEvent{view(true)}, now.Add(time.Second))
	c.Ready()
	if got := c.index.byWorkload[workloadKey{"default", "web"}]; len(got) != 1 || !got[0].Ready {
		t.Errorf("the readiness change was not taken in: %+v", got)
	}
}

// TestHostileRevertTargetIsRefused: a failure verdict from a member naming a revert target
// that is not a commit SHA, or a commit whose Deployment has another spec, makes no node
// load anything or run anything but the desired spec; status says why it cannot revert.
func TestHostileRevertTargetIsRefused(t *testing.T) {
	c := newCore(DefaultConfig("a"), true, DNSConfig{})
	rev := spec.Revision{Commit: strings.Repeat("1", 40)}
	files := map[string]string{"web.yaml": deployment("web", "hello:v2", 1, "")}
	c.accept(loadFiles(t, rev, files))
	c.keepCommit(loadFiles(t, spec.Revision{Commit: strings.Repeat("2", 40)}, map[string]string{"web.yaml": deployment("web", "hello:v9", 1, "")}))
	k := workloadKey{"default", "web"}
	hash := c.baseWorkloads[k].hash
	for i, target := range []struct{ commit, hash string }{
		{"../../etc/passwd", "abc"},             // not a SHA: never handed to Git
		{strings.Repeat("2", 40), "0123456789"}, // a real commit, but not that spec
	} {
		body, _ := json.Marshal(failedVerdict{Hash: hash, Reason: "x", RevertHash: target.hash, RevertCommit: target.commit})
		c.onDecisions([]gossip.Decision{{Key: decisionKey(failedPrefix, k), Author: "evil", Time: c.now.Add(time.Duration(i+1) * time.Hour), Body: body}})
		c.refreshVerdicts()
		c.rd = ready{}
		c.applyOverrides()
		if len(c.rd.loadCommits) > 0 || c.revertWaiting {
			t.Errorf("target %q: asked to load %v (waiting %v)", target.commit, c.rd.loadCommits, c.revertWaiting)
		}
		if w := c.workloads[k]; w != c.baseWorkloads[k] {
			t.Errorf("target %q: web runs %s, want its desired spec %s", target.commit, w.hash, hash)
		}
		if why := c.revertWait(target.commit); !strings.HasPrefix(why, "cannot revert") {
			t.Errorf("target %q: status says %q, want why it cannot revert", target.commit, why)
		}
		c.overridesDue = true
	}
}
