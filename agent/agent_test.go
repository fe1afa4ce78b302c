package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/internal/testsupport"
	"github.com/shoalhq/shoal/planner"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness runs an Agent on a Fake runtime with revisions fed by the test.
type harness struct {
	t      *testing.T
	fake   *executortest.Fake
	agent  *Agent
	revs   chan source.Event
	cancel context.CancelFunc
	done   chan error
	commit int
}

func newHarness(t *testing.T, fake *executortest.Fake, tune ...func(*Config)) *harness {
	return newHarnessWrapped(t, fake, nil, tune...)
}

// newHarnessWrapped is newHarness with the agent's runtime wrapped by wrap (when not nil),
// for tests that watch the calls.
func newHarnessWrapped(t *testing.T, fake *executortest.Fake, wrap func(executor.Runtime) executor.Runtime, tune ...func(*Config)) *harness {
	t.Helper()
	return newHarnessOpts(t, fake, wrap, nil, tune...)
}

// newHarnessOpts is newHarnessWrapped with Options for New.
func newHarnessOpts(t *testing.T, fake *executortest.Fake, wrap func(executor.Runtime) executor.Runtime, opts []Option, tune ...func(*Config)) *harness {
	t.Helper()
	if fake == nil {
		fake = executortest.NewFake(executortest.FakeConfig{
			StateDir: t.TempDir(),
			Images: map[string]executortest.Program{
				"hello:v1": executortest.HelloProgram,
				"hello:v2": executortest.HelloProgram,
			},
		})
		t.Cleanup(func() { fake.Close() })
	}
	cfg := DefaultConfig("node-a")
	cfg.Allocatable = planner.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30}
	cfg.CrashBackoff = executor.Backoff{Base: 200 * time.Millisecond, Cap: time.Second, ResetAfter: time.Minute, ImmediateFirst: true}
	cfg.StartBackoff = executor.Backoff{Base: 100 * time.Millisecond, Cap: time.Second, ResetAfter: time.Minute}
	cfg.ResyncInterval = time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	for _, f := range tune {
		f(&cfg)
	}
	h := &harness{t: t, fake: fake, revs: make(chan source.Event), done: make(chan error, 1)}
	var rt executor.Runtime = fake
	if wrap != nil {
		rt = wrap(fake)
	}
	a, err := New(cfg, rt, h.revs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

// push loads files as a new revision and hands it to the agent, as the poller would.
func (h *harness) push(files map[string]string) spec.Revision {
	h.t.Helper()
	h.commit++
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	rev := spec.Revision{Commit: fmt.Sprintf("%040d", h.commit), Message: "commit", Time: time.Now()}
	set, diags := spec.Load(fsys, spec.DefaultLoadOptions())
	ev := source.Event{Revision: rev, Diagnostics: diags}
	if set != nil {
		ev.Desired = &spec.Desired{Revision: rev, Objects: set}
	} else {
		ev.Err = fmt.Errorf("%w: %d errors", source.ErrRevisionRejected, len(diags.Errors())) // as the Poller sends it
	}
	h.revs <- ev
	return rev
}

// waitFor polls the status until cond holds, failing after a generous deadline.
func (h *harness) waitFor(what string, cond func(*Status) bool) *Status {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := h.agent.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; last status:\n%s", what, dump(st))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dump(st *Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "desired=%v converged=%v sync=%+v\n", st.Desired != nil, st.Converged, st.Sync)
	for _, w := range st.Workloads {
		fmt.Fprintf(&b, "%s/%s %d/%d unplaced=%v\n", w.Namespace, w.Name, w.Ready, w.Replicas, w.Unplaced)
		for _, in := range w.Instances {
			fmt.Fprintf(&b, "  %s %s restarts=%d exit=%q msg=%q\n", in.ID, in.Phase, in.Restarts, in.LastExit, in.Message)
		}
	}
	return b.String()
}

func workload(st *Status, name string) *WorkloadStatus {
	for i := range st.Workloads {
		if st.Workloads[i].Name == name {
			return &st.Workloads[i]
		}
	}
	return nil
}

// readyWith reports whether a workload has exactly n instances, all ready, all running image.
func readyWith(name string, n int, image string) func(*Status) bool {
	return func(st *Status) bool {
		w := workload(st, name)
		if w == nil || len(w.Instances) != n || w.Ready != n {
			return false
		}
		for _, in := range w.Instances {
			if len(in.Containers) == 0 || in.Containers[0].Image != image {
				return false
			}
		}
		return true
	}
}

// deployment is a Deployment of one container "main" that stops within a second; extra
// adds lines to the container.
func deployment(name, image string, replicas int, extra string) string {
	return testsupport.Deployment{Name: name, Replicas: replicas, Image: image, GracePeriod: 1, ContainerYAML: extra}.YAML()
}

func TestDeployScaleUpdateDelete(t *testing.T) {
	h := newHarness(t, nil)
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 3, "")})
	st := h.waitFor("3 ready v1 instances", readyWith("web", 3, "hello:v1"))
	if !st.Converged || st.Applied == nil || st.Applied.Commit != st.Desired.Commit {
		t.Errorf("converged=%v applied=%v, want the desired revision applied", st.Converged, st.Applied)
	}
	for _, stage := range []string{"fetched", "validated", "planned", "pulled", "started", "ready"} {
		if !hasStage(st, stage) {
			t.Errorf("timeline lacks %q: %+v", stage, st.Timeline)
		}
	}

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 5, "")})
	h.waitFor("scaled up to 5", readyWith("web", 5, "hello:v1"))
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h.waitFor("scaled down to 2", readyWith("web", 2, "hello:v1"))

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v2", 2, "")})
	h.waitFor("rolled to v2", readyWith("web", 2, "hello:v2"))

	h.push(map[string]string{"other.yaml": deployment("other", "hello:v1", 1, "")})
	h.waitFor("web removed, other running", func(st *Status) bool {
		return workload(st, "web") == nil && readyWith("other", 1, "hello:v1")(st)
	})
	states, err := h.fake.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].Workload != "other" {
		t.Errorf("runtime holds %d instances (%v), want only other's", len(states), states)
	}
}

func hasStage(st *Status, name string) bool {
	for _, s := range st.Timeline {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestRejectedRevisionKeepsRunning(t *testing.T) {
	h := newHarness(t, nil)
	good := h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h.waitFor("2 ready", readyWith("web", 2, "hello:v1"))

	h.push(map[string]string{"web.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: [unclosed\n"})
	st := h.waitFor("rejection reported", func(st *Status) bool { return st.Sync.Rejected != nil })
	if st.Desired.Commit != good.Commit {
		t.Errorf("desired = %s, want the last good %s", st.Desired.Commit, good.Commit)
	}
	if len(st.Sync.Diagnostics) == 0 || st.Sync.Diagnostics[0].File != "web.yaml" || st.Sync.Diagnostics[0].Line == 0 {
		t.Errorf("diagnostics %+v, want web.yaml with a line", st.Sync.Diagnostics)
	}
	if !readyWith("web", 2, "hello:v1")(st) {
		t.Errorf("running instances disturbed by a bad revision:\n%s", dump(st))
	}

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v2", 2, "")})
	st = h.waitFor("next good revision applied", readyWith("web", 2, "hello:v2"))
	if st.Sync.Rejected != nil || st.Sync.Error != "" {
		t.Errorf("sync error not cleared by a good revision: %+v", st.Sync)
	}
}

func TestCrashLoopBacksOffAndOOMIsReported(t *testing.T) {
	h := newHarness(t, nil)
	crash := "        env:\n        - {name: EXIT_AFTER, value: 10ms}\n        - {name: EXIT_CODE, value: \"3\"}\n"
	oom := "        env:\n        - {name: ALLOC_MB, value: \"64\"}\n        resources:\n          limits: {memory: 32Mi}\n"
	h.push(map[string]string{
		"crash.yaml": deployment("crash", "hello:v1", 1, crash),
		"oom.yaml":   deployment("oom", "hello:v1", 1, oom),
	})
	st := h.waitFor("crash restarted 3 times, oom reported", func(st *Status) bool {
		c, o := workload(st, "crash"), workload(st, "oom")
		return c != nil && len(c.Instances) == 1 && c.Instances[0].Restarts >= 3 &&
			o != nil && len(o.Instances) == 1 && strings.HasPrefix(o.Instances[0].LastExit, "OOMKilled")
	})
	if got := workload(st, "crash").Instances[0].LastExit; got != "Error (exit 3)" {
		t.Errorf("crash last exit = %q, want Error (exit 3)", got)
	}
	// With a 200ms base the delays go 0, 200ms, 400ms, 800ms, 1s: three restarts take at
	// least 600ms, so a loop that restarts without waiting would show many more by now.
	if r := workload(st, "crash").Instances[0].Restarts; r > 6 {
		t.Errorf("crash restarted %d times: backoff not applied", r)
	}
	h.waitFor("crash-looping instance shown as such", func(st *Status) bool {
		return workload(st, "crash").Instances[0].Phase == PhaseCrashLoop
	})
}

func TestAdoptsWithoutRestartingAndRestoresKilled(t *testing.T) {
	h := newHarness(t, nil)
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h.waitFor("2 ready", readyWith("web", 2, "hello:v1"))
	before := pids(t, h.fake)
	h.stop() // the agent goes away; its containers stay

	h2 := newHarness(t, h.fake.Reopen())
	h2.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h2.waitFor("adopted 2 ready", readyWith("web", 2, "hello:v1"))
	if after := pids(t, h.fake); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("PIDs changed on adoption: before %v, after %v", before, after)
	}

	var victim uint32
	for _, pid := range before {
		victim = pid
		break
	}
	if err := h.fake.Kill(victim, 9); err != nil {
		t.Fatal(err)
	}
	st := h2.waitFor("killed container restored", func(st *Status) bool {
		w := workload(st, "web")
		return readyWith("web", 2, "hello:v1")(st) && w.Instances[0].Restarts+w.Instances[1].Restarts == 1
	})
	_ = st
}

func pids(t *testing.T, rt executor.Runtime) map[string]uint32 {
	t.Helper()
	states, err := rt.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, s := range states {
		for _, c := range s.Containers {
			out[s.ID+"/"+c.Name] = c.PID
		}
	}
	return out
}

func TestHostPortsLimitOnePerNodeAndRollOldBeforeNew(t *testing.T) {
	h := newHarness(t, nil)
	ports := "        ports:\n        - containerPort: 8080\n"
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, ports)})
	st := h.waitFor("one ready, one unplaced", func(st *Status) bool {
		w := workload(st, "web")
		return w != nil && w.Ready == 1 && len(w.Unplaced) == 1
	})
	if reason := workload(st, "web").Unplaced[0].Reason; !strings.Contains(reason, "port") {
		t.Errorf("unplaced reason %q does not name the port conflict", reason)
	}

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v2", 1, ports)})
	h.waitFor("rolled to v2 though the port allows only one", readyWith("web", 1, "hello:v2"))
}

func TestUnpullableImageIsReportedAndOthersGoOn(t *testing.T) {
	h := newHarness(t, nil)
	h.push(map[string]string{
		"bad.yaml":  deployment("bad", "hello:missing", 1, ""),
		"good.yaml": deployment("good", "hello:v1", 1, ""),
	})
	h.waitFor("bad in ImagePullBackOff, good ready", func(st *Status) bool {
		b := workload(st, "bad")
		return readyWith("good", 1, "hello:v1")(st) && b != nil && len(b.Instances) == 1 &&
			b.Instances[0].Phase == PhaseImagePullBackOff && b.Instances[0].Message != ""
	})
}

func TestConfigDefaultsValidate(t *testing.T) {
	cfg := DefaultConfig("n")
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	bad := Config{}
	err := bad.Validate()
	if err == nil {
		t.Fatal("empty config validated")
	}
	for _, want := range []string{"node name", "resync", "crash", "start", "parallel", "logger"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// countingRuntime records how many instances run around each Start and Stop.
type countingRuntime struct {
	executor.Runtime
	mu           sync.Mutex
	running      map[string]bool
	maxRunning   int
	minAfterStop int
}

func (c *countingRuntime) Start(ctx context.Context, s executor.InstanceSpec) error {
	err := c.Runtime.Start(ctx, s)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.running[s.ID] = true
		c.maxRunning = max(c.maxRunning, len(c.running))
	}
	return err
}

func (c *countingRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	c.mu.Lock()
	delete(c.running, id)
	c.minAfterStop = min(c.minAfterStop, len(c.running))
	c.mu.Unlock()
	return c.Runtime.Stop(ctx, id, grace)
}

func TestRollingUpdateKeepsWithinSurgeAndUnavailable(t *testing.T) {
	var counting *countingRuntime
	h := newHarnessWrapped(t, nil, func(rt executor.Runtime) executor.Runtime {
		counting = &countingRuntime{Runtime: rt, running: map[string]bool{}, minAfterStop: 1 << 30}
		return counting
	})

	strategy := "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"
	withStrategy := func(image string) string {
		d := deployment("web", image, 4, "")
		return strings.Replace(d, "  template:\n", strategy+"  template:\n", 1)
	}
	h.push(map[string]string{"web.yaml": withStrategy("hello:v1")})
	h.waitFor("4 ready v1", readyWith("web", 4, "hello:v1"))
	counting.mu.Lock()
	counting.maxRunning, counting.minAfterStop = 0, 1<<30
	counting.mu.Unlock()

	h.push(map[string]string{"web.yaml": withStrategy("hello:v2")})
	h.waitFor("4 ready v2", readyWith("web", 4, "hello:v2"))
	counting.mu.Lock()
	defer counting.mu.Unlock()
	if counting.maxRunning != 5 {
		t.Errorf("at most %d instances ran during the update, want replicas+maxSurge = 5", counting.maxRunning)
	}
	if counting.minAfterStop != 4 {
		t.Errorf("down to %d instances after a stop, want never below replicas-maxUnavailable = 4", counting.minAfterStop)
	}
}

func TestChangedConfigMapReplacesInstances(t *testing.T) {
	h := newHarness(t, nil)
	envFrom := "        envFrom:\n        - configMapRef: {name: web-config}\n"
	config := func(v string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {MESSAGE: " + v + "}\n"
	}
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 1, envFrom), "cm.yaml": config("one")})
	first := h.waitFor("1 ready", readyWith("web", 1, "hello:v1"))
	oldID := workload(first, "web").Instances[0].ID

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 1, envFrom), "cm.yaml": config("two")})
	h.waitFor("instance replaced", func(st *Status) bool {
		w := workload(st, "web")
		return readyWith("web", 1, "hello:v1")(st) && w.Instances[0].ID != oldID
	})
}

func TestProbesGateReadinessAndRestartOnLivenessFailure(t *testing.T) {
	h := newHarness(t, nil)
	probes := `        readinessProbe:
          exec: {command: [/hello, -check, "http://127.0.0.1:8080/readyz"]}
          periodSeconds: 1
          failureThreshold: 1
`
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 1, probes)})
	st := h.waitFor("ready through its probe", readyWith("web", 1, "hello:v1"))
	pid := workload(st, "web").Instances[0].Containers[0].PID
	if pid == 0 {
		st = h.waitFor("a PID", func(st *Status) bool { return workload(st, "web").Instances[0].Containers[0].PID != 0 })
		pid = workload(st, "web").Instances[0].Containers[0].PID
	}
	if err := h.fake.Kill(pid, syscall.SIGUSR1); err != nil { // the app starts failing its checks
		t.Fatal(err)
	}
	h.waitFor("not ready after the readiness probe failed", func(st *Status) bool {
		w := workload(st, "web")
		return w.Ready == 0 && w.Instances[0].Phase == PhaseRunning
	})
	if err := h.fake.Kill(pid, syscall.SIGUSR2); err != nil { // and recovers
		t.Fatal(err)
	}
	h.waitFor("ready again", readyWith("web", 1, "hello:v1"))

	liveness := strings.Replace(probes, "readinessProbe", "livenessProbe", 1)
	h.push(map[string]string{"live.yaml": deployment("live", "hello:v1", 1, liveness)})
	st = h.waitFor("live running with a PID", func(st *Status) bool {
		w := workload(st, "live")
		return w != nil && w.Ready == 1 && w.Instances[0].Containers[0].PID != 0
	})
	if err := h.fake.Kill(workload(st, "live").Instances[0].Containers[0].PID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	st = h.waitFor("restarted after the liveness probe failed", func(st *Status) bool {
		w := workload(st, "live")
		return w.Instances[0].Restarts == 1 && w.Ready == 1
	})
	if got := workload(st, "live").Instances[0].LastExit; !strings.HasPrefix(got, "liveness probe failed") {
		t.Errorf("last exit %q, want the liveness failure", got)
	}
}
