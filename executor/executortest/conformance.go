package executortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// Harness is what RunConformance needs of the Runtime under test.
type Harness struct {
	// New returns a Runtime with no instances that is closed when the test ends.
	New func(t *testing.T) executor.Runtime
	// Reopen returns a second Runtime on the same containers as rt, as a restarted agent
	// has; it is closed when the test ends.
	Reopen func(t *testing.T, rt executor.Runtime) executor.Runtime
	// Kill sends sig to a container's process from outside Shoal, as `kill PID` would.
	Kill func(t *testing.T, rt executor.Runtime, c executor.ContainerState, sig syscall.Signal)
	// Image runs examples/hello (HelloProgram in a Fake).
	Image string
	// MissingImage is a reference no registry holds.
	MissingImage string
}

// waitFor bounds every wait of the suite. It is a deadline for liveness, not a speed
// target: a healthy runtime answers in well under a second.
const waitFor = 30 * time.Second

// RunConformance checks that a Runtime keeps the executor.Runtime contract: image pulls
// and their errors, idempotent Start and Stop, graceful and forced stops, exit and OOM
// events (and no OOM for a plain SIGKILL), restarts in place, adoption by a second
// Runtime, several containers per instance, init containers started stage by stage and
// sidecars stopped last, logs, commands run in containers (Exec)
// with their exit codes, deadlines and errors, and the refusal of what a runtime with
// the default executor.Permissions forbids.
func RunConformance(t *testing.T, h Harness) {
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"EnsureImage", testEnsureImage},
		{"StartIsIdempotent", testStartIsIdempotent},
		{"StopIsGracefulAndIdempotent", testStopIsGraceful},
		{"StopKillsAfterGrace", testStopKillsAfterGrace},
		{"ExitEvent", testExitEvent},
		{"OOMKilled", testOOMKilled},
		{"KillByHandIsNotOOM", testKillByHand},
		{"RestartInPlace", testRestart},
		{"Adoption", testAdoption},
		{"SeveralContainers", testSeveralContainers},
		{"Logs", testLogs},
		{"EventsEndWithContext", testEventsEnd},
		{"Exec", testExec},
		{"StartRefusesWhatTheNodeForbids", testStartForbidden},
		{"InitContainersAndSidecars", testInitContainers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, h) })
	}
}

func testEnsureImage(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	steps := []struct {
		ref     string
		policy  executor.PullPolicy
		wantErr bool
	}{
		{h.Image, executor.PullNever, true}, // not pulled yet
		{h.Image, executor.PullIfNotPresent, false},
		{h.Image, executor.PullNever, false},
		{h.Image, executor.PullAlways, false},
		{h.MissingImage, executor.PullIfNotPresent, true},
		{h.MissingImage, executor.PullAlways, true},
	}
	for _, s := range steps {
		err := rt.EnsureImage(ctx, s.ref, s.policy)
		if s.wantErr != (err != nil) || err != nil && !errors.Is(err, executor.ErrImagePull) {
			t.Errorf("EnsureImage(%s, %s) = %v, want error %v wrapping ErrImagePull", s.ref, s.policy, err, s.wantErr)
		}
	}
	spec := hello(t, h, "missing-0")
	spec.Containers[0].Image = h.MissingImage
	if err := rt.Start(ctx, spec); !errors.Is(err, executor.ErrImagePull) {
		t.Errorf("Start with a missing image = %v, want ErrImagePull", err)
	}
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("a failed Start left %+v", got)
	}
}

func testStartIsIdempotent(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	spec := hello(t, h, "web-0")
	start(t, rt, spec)
	got := list(t, rt)
	if len(got) != 1 {
		t.Fatalf("List = %+v, want one instance", got)
	}
	inst := got[0]
	want := executor.InstanceState{ID: spec.ID, Namespace: spec.Namespace, Workload: spec.Workload,
		SpecHash: spec.SpecHash, Revision: spec.Revision, Node: spec.Node, GracePeriod: spec.GracePeriod}
	inst.Containers = nil
	if !reflect.DeepEqual(inst, want) {
		t.Errorf("List = %+v, want %+v", inst, want)
	}
	c := got[0].Containers[0]
	if c.Name != "app" || c.Image == "" || c.Status != executor.StatusRunning || c.PID == 0 || c.RuntimeID == "" {
		t.Errorf("container = %+v, want app running with a PID", c)
	}
	if err := rt.Start(ctx, spec); err != nil {
		t.Errorf("second Start with the same hash = %v, want nil", err)
	}
	if again := container(t, rt, spec.ID, "app"); again.PID != c.PID || again.Status != executor.StatusRunning {
		t.Errorf("second Start restarted the container: %+v, was %+v", again, c)
	}
	other := spec
	other.SpecHash = "another-hash"
	if err := rt.Start(ctx, other); !errors.Is(err, executor.ErrConflict) {
		t.Errorf("Start with another hash = %v, want ErrConflict", err)
	}
	empty := spec
	empty.ID, empty.Containers = "empty-0", nil
	if err := rt.Start(ctx, empty); !errors.Is(err, executor.ErrInvalidSpec) {
		t.Errorf("Start without containers = %v, want ErrInvalidSpec", err)
	}
	stop(t, rt, spec.ID, 0)
}

func testStopIsGraceful(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	events := rt.Events(ctx)
	spec := hello(t, h, "web-1")
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	stop(t, rt, spec.ID, waitFor)
	exit := nextEvent(t, events, spec.ID, executor.EventExit)
	if exit.ExitCode != 0 || exit.OOMKilled {
		t.Errorf("exit after SIGTERM = %+v, want code 0: the app handles SIGTERM", exit)
	}
	nextEvent(t, events, spec.ID, executor.EventDeleted)
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("List after Stop = %+v", got)
	}
	if err := rt.Logs(ctx, spec.ID, "app", executor.LogOptions{Tail: -1}, &bytes.Buffer{}); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("Logs after Stop = %v, want ErrNotFound", err)
	}
	stop(t, rt, spec.ID, time.Second)
	stop(t, rt, "never-existed", time.Second)
}

func testStopKillsAfterGrace(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "stubborn-0", env("IGNORE_SIGTERM", "1"))
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	stop(t, rt, spec.ID, 300*time.Millisecond)
	exit := nextEvent(t, events, spec.ID, executor.EventExit)
	if exit.ExitCode != 137 || exit.OOMKilled {
		t.Errorf("exit of a process ignoring SIGTERM = %+v, want 137 (SIGKILL), not OOM", exit)
	}
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("List after Stop = %+v", got)
	}
}

func testExitEvent(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "crash-0", env("EXIT_AFTER", "300ms"), env("EXIT_CODE", "3"))
	start(t, rt, spec)
	exit := nextEvent(t, events, spec.ID, executor.EventExit)
	if exit.ExitCode != 3 || exit.OOMKilled || exit.Container != "app" || exit.PID == 0 {
		t.Errorf("exit event = %+v, want app exiting with 3", exit)
	}
	c := container(t, rt, spec.ID, "app")
	if c.Status != executor.StatusExited || c.ExitCode != 3 || c.OOMKilled || c.ExitedAt.IsZero() {
		t.Errorf("List after the crash = %+v, want exited with 3", c)
	}
	noMoreExits(t, events, spec.ID)
	stop(t, rt, spec.ID, time.Second)
}

func testOOMKilled(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "hungry-0", env("ALLOC_MB", "256"))
	spec.Containers[0].MemoryLimitBytes = 48 << 20
	start(t, rt, spec)
	var sawOOM bool
	var exit executor.Event
	for exit.Kind != executor.EventExit {
		exit = nextEvent(t, events, spec.ID, "")
		sawOOM = sawOOM || exit.Kind == executor.EventOOM
	}
	// containerd sends /tasks/oom a few ms before /tasks/exit, but the two come on one
	// stream from different sources: on a busy machine the exit can come first.
	for wait := time.After(2 * time.Second); !sawOOM; {
		select {
		case ev, ok := <-events:
			sawOOM = ok && ev.InstanceID == spec.ID && ev.Kind == executor.EventOOM
			if !ok {
				wait = nil
			}
		case <-wait:
			wait = nil
		}
		if wait == nil {
			break
		}
	}
	if !sawOOM || !exit.OOMKilled || exit.ExitCode != 137 {
		t.Errorf("OOM event seen: %v; exit = %+v; want an OOM event and OOMKilled with 137", sawOOM, exit)
	}
	if c := container(t, rt, spec.ID, "app"); !c.OOMKilled || c.Status != executor.StatusExited {
		t.Errorf("List after the OOM kill = %+v, want OOMKilled", c)
	}
	stop(t, rt, spec.ID, time.Second)
}

func testKillByHand(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "victim-0")
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	h.Kill(t, rt, container(t, rt, spec.ID, "app"), syscall.SIGKILL)
	exit := nextEvent(t, events, spec.ID, executor.EventExit)
	if exit.ExitCode != 137 || exit.OOMKilled {
		t.Errorf("exit after a SIGKILL by hand = %+v, want 137 and not OOMKilled", exit)
	}
	if c := container(t, rt, spec.ID, "app"); c.OOMKilled || c.ExitCode != 137 {
		t.Errorf("List after the kill = %+v, want 137, not OOMKilled", c)
	}
	stop(t, rt, spec.ID, time.Second)
}

func testRestart(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	events := rt.Events(ctx)
	spec := hello(t, h, "phoenix-0")
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	first := container(t, rt, spec.ID, "app")
	h.Kill(t, rt, first, syscall.SIGKILL)
	nextEvent(t, events, spec.ID, executor.EventExit)

	if err := rt.Restart(ctx, spec.ID, "app"); err != nil {
		t.Fatalf("Restart after a crash: %v", err)
	}
	second := container(t, rt, spec.ID, "app")
	if second.Status != executor.StatusRunning || second.PID == first.PID || second.Restarts != 1 {
		t.Errorf("after Restart: %+v, want running with a new PID and 1 restart (was PID %d)", second, first.PID)
	}
	waitLogCount(t, rt, spec.ID, "app", "hello: listening", 2) // one log file across restarts

	// A running container is stopped gracefully first.
	if err := rt.Restart(ctx, spec.ID, "app"); err != nil {
		t.Fatalf("Restart of a running container: %v", err)
	}
	if exit := nextEvent(t, events, spec.ID, executor.EventExit); exit.ExitCode != 0 || exit.PID != second.PID {
		t.Errorf("exit of the restarted running container = %+v, want PID %d with code 0", exit, second.PID)
	}
	if third := container(t, rt, spec.ID, "app"); third.Status != executor.StatusRunning || third.Restarts != 2 {
		t.Errorf("after the second Restart: %+v, want running with 2 restarts", third)
	}
	for _, target := range [][2]string{{"nope-0", "app"}, {spec.ID, "nope"}} {
		if err := rt.Restart(ctx, target[0], target[1]); !errors.Is(err, executor.ErrNotFound) {
			t.Errorf("Restart(%s, %s) = %v, want ErrNotFound", target[0], target[1], err)
		}
	}
	stop(t, rt, spec.ID, time.Second)
}

func testAdoption(t *testing.T, h Harness) {
	rt := h.New(t)
	spec := hello(t, h, "adopted-0")
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	before := container(t, rt, spec.ID, "app")

	adopter := h.Reopen(t, rt)
	events := adopter.Events(context.Background())
	got := list(t, adopter)
	if len(got) != 1 || got[0].ID != spec.ID || got[0].SpecHash != spec.SpecHash || got[0].Revision != spec.Revision {
		t.Fatalf("the new runtime lists %+v, want instance %s", got, spec.ID)
	}
	if after := got[0].Containers[0]; after.PID != before.PID || after.Status != executor.StatusRunning {
		t.Errorf("adopted container = %+v, want the same running PID %d", after, before.PID)
	}
	if err := adopter.Start(context.Background(), spec); err != nil {
		t.Errorf("Start of the adopted instance = %v, want a no-op", err)
	}
	if again := container(t, adopter, spec.ID, "app"); again.PID != before.PID {
		t.Errorf("Start of the adopted instance restarted it: PID %d, was %d", again.PID, before.PID)
	}
	h.Kill(t, adopter, before, syscall.SIGKILL)
	if exit := nextEvent(t, events, spec.ID, executor.EventExit); exit.PID != before.PID {
		t.Errorf("exit seen by the adopter = %+v, want PID %d", exit, before.PID)
	}
	stop(t, adopter, spec.ID, time.Second)
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("the first runtime still lists %+v", got)
	}
}

func testSeveralContainers(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "pair-0")
	sidecar := hello(t, h, "unused").Containers[0]
	sidecar.Name = "sidecar"
	spec.Containers = append(spec.Containers, sidecar)
	start(t, rt, spec)
	got := list(t, rt)
	if len(got) != 1 || len(got[0].Containers) != 2 || got[0].Containers[0].Name != "app" || got[0].Containers[1].Name != "sidecar" || !got[0].Running() {
		t.Fatalf("List = %+v, want one running instance with containers app and sidecar", got)
	}
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	waitLog(t, rt, spec.ID, "sidecar", "hello: listening")
	stop(t, rt, spec.ID, waitFor)
	seen := map[string]int{}
	for range 4 {
		ev := nextEvent(t, events, spec.ID, "")
		seen[string(ev.Kind)+"/"+ev.Container]++
	}
	for _, k := range []string{"exit/app", "exit/sidecar", "deleted/app", "deleted/sidecar"} {
		if seen[k] != 1 {
			t.Errorf("events after Stop: %v, want one each of exit and deleted per container", seen)
			break
		}
	}
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("List after Stop = %+v", got)
	}
}

func testLogs(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	spec := hello(t, h, "chatty-0", env("LOG_EVERY", "50ms"))
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: tick 3")
	var last bytes.Buffer
	if err := rt.Logs(ctx, spec.ID, "app", executor.LogOptions{Tail: 1}, &last); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(last.String(), "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "hello: tick") {
		t.Errorf("Tail 1 = %q, want one tick line", last.String())
	}
	followCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var followed bytes.Buffer
	if err := rt.Logs(followCtx, spec.ID, "app", executor.LogOptions{Tail: 0, Follow: true}, &followed); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(followed.String(), "hello: tick"); n < 2 {
		t.Errorf("following for 1s at a tick per 50ms gave %d ticks: %q", n, followed.String())
	}
	if strings.Contains(followed.String(), "listening") {
		t.Errorf("Follow with Tail 0 repeated old lines: %q", followed.String())
	}
	if err := rt.Logs(ctx, "nope-0", "app", executor.LogOptions{}, &last); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("Logs of an unknown instance = %v, want ErrNotFound", err)
	}
	stop(t, rt, spec.ID, time.Second)
}

func testEventsEnd(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	events := rt.Events(ctx)
	cancel()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the event channel stayed open after its context ended")
		}
	}
}

// testExec runs the hello image's health check in its container: its exit code follows
// the app's health (SIGUSR1 fails it, SIGUSR2 heals it), a check against a frozen app
// (SIGSTOP) is killed at the deadline, and none of it counts as the container's exit.
func testExec(t *testing.T, h Harness) {
	rt := h.New(t)
	ctx := context.Background()
	events := rt.Events(ctx)
	spec := hello(t, h, "checked-0")
	start(t, rt, spec)
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	app := container(t, rt, spec.ID, "app")
	check := []string{"/hello", "-check", "http://" + spec.Containers[0].Env[0].Value + "/healthz"} // Env[0] is LISTEN

	waitExit(t, rt, spec.ID, check, 0)
	h.Kill(t, rt, app, syscall.SIGUSR1)
	waitExit(t, rt, spec.ID, check, 1)
	h.Kill(t, rt, app, syscall.SIGUSR2)
	waitExit(t, rt, spec.ID, check, 0)

	h.Kill(t, rt, app, syscall.SIGSTOP)
	deadline, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	began := time.Now()
	code, err := rt.Exec(deadline, spec.ID, "app", check)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec against a frozen app = %d, %v; want an error wrapping DeadlineExceeded", code, err)
	}
	if took := time.Since(began); took > waitFor/2 {
		t.Errorf("Exec took %v after its deadline of 500ms: the command was not killed", took)
	}
	h.Kill(t, rt, app, syscall.SIGCONT)
	waitExit(t, rt, spec.ID, check, 0)

	if _, err := rt.Exec(ctx, spec.ID, "app", []string{"/no-such-command"}); err == nil {
		t.Error("Exec of a command the image does not hold succeeded, want an error")
	}
	for _, target := range [][2]string{{"nope-0", "app"}, {spec.ID, "nope"}} {
		if _, err := rt.Exec(ctx, target[0], target[1], check); !errors.Is(err, executor.ErrNotFound) {
			t.Errorf("Exec in %s/%s = %v, want ErrNotFound", target[0], target[1], err)
		}
	}
	h.Kill(t, rt, app, syscall.SIGKILL)
	if exit := nextEvent(t, events, spec.ID, executor.EventExit); exit.PID != app.PID {
		t.Errorf("first exit event = %+v, want the container's own (PID %d): an exec'd command's exit was reported", exit, app.PID)
	}
	if _, err := rt.Exec(ctx, spec.ID, "app", check); !errors.Is(err, executor.ErrNotRunning) {
		t.Errorf("Exec in an exited container = %v, want ErrNotRunning", err)
	}
	stop(t, rt, spec.ID, time.Second)
}

// waitExit runs argv in the instance's app container until it exits with want: a signal
// sent to the app a moment ago may not have been handled yet.
func waitExit(t *testing.T, rt executor.Runtime, id string, argv []string, want int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		code, err := rt.Exec(context.Background(), id, "app", argv)
		if err != nil {
			t.Fatalf("Exec %q: %v", argv, err)
		}
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Exec %q exits with %d, not %d, after %v", argv, code, want, waitFor)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hello is an instance running the hello image on a free loopback port.
func hello(t *testing.T, h Harness, id string, extra ...executor.EnvVar) executor.InstanceSpec {
	t.Helper()
	return executor.InstanceSpec{
		ID: id, Namespace: "default", Workload: "hello", Revision: "0123abcd", SpecHash: "hash-1",
		Node: "node-a", GracePeriod: 10 * time.Second,
		Containers: []executor.ContainerSpec{{
			Name:       "app",
			Image:      h.Image,
			PullPolicy: executor.PullIfNotPresent,
			Env:        append([]executor.EnvVar{env("LISTEN", fmt.Sprintf("127.0.0.1:%d", FreePort(t)))}, extra...),
		}},
	}
}

func env(name, value string) executor.EnvVar { return executor.EnvVar{Name: name, Value: value} }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(t *testing.T, rt executor.Runtime, spec executor.InstanceSpec) {
	t.Helper()
	if err := rt.Start(context.Background(), spec); err != nil {
		t.Fatalf("Start %s: %v", spec.ID, err)
	}
}

func stop(t *testing.T, rt executor.Runtime, id string, grace time.Duration) {
	t.Helper()
	if err := rt.Stop(context.Background(), id, grace); err != nil {
		t.Fatalf("Stop %s: %v", id, err)
	}
}

func list(t *testing.T, rt executor.Runtime) []executor.InstanceState {
	t.Helper()
	got, err := rt.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

// container returns one container of an instance as List reports it.
func container(t *testing.T, rt executor.Runtime, id, name string) executor.ContainerState {
	t.Helper()
	for _, inst := range list(t, rt) {
		for _, c := range inst.Containers {
			if inst.ID == id && c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("List has no container %s/%s", id, name)
	return executor.ContainerState{}
}

// nextEvent returns the next event of the instance of the given kind (any kind when
// empty), skipping others.
func nextEvent(t *testing.T, events <-chan executor.Event, id string, kind executor.EventKind) executor.Event {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed while waiting for %s of %s", kind, id)
			}
			if ev.InstanceID == id && (kind == "" || ev.Kind == kind) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event for %s within %v", kind, id, waitFor)
		}
	}
}

// noMoreExits checks that no second exit of the instance comes within a short while:
// events are reported once.
func noMoreExits(t *testing.T, events <-chan executor.Event, id string) {
	t.Helper()
	quiet := time.After(500 * time.Millisecond)
	for {
		select {
		case ev := <-events:
			if ev.InstanceID == id && ev.Kind == executor.EventExit {
				t.Errorf("exit reported twice: %+v", ev)
			}
		case <-quiet:
			return
		}
	}
}

func waitLog(t *testing.T, rt executor.Runtime, id, container, substr string) {
	t.Helper()
	waitLogCount(t, rt, id, container, substr, 1)
}

// waitLogCount waits until the container's log holds substr n times.
func waitLogCount(t *testing.T, rt executor.Runtime, id, container, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	var buf bytes.Buffer
	for {
		buf.Reset()
		if err := rt.Logs(context.Background(), id, container, executor.LogOptions{Tail: -1}, &buf); err != nil {
			t.Fatalf("Logs %s/%s: %v", id, container, err)
		}
		if strings.Count(buf.String(), substr) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s/%s has not shown %q %d times within %v:\n%s", id, container, substr, n, waitFor, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testStartForbidden: a runtime with the default Permissions refuses host namespaces and
// privileged containers, naming the flag, and leaves nothing behind.
func testStartForbidden(t *testing.T, h Harness) {
	rt := h.New(t)
	hostPID := hello(t, h, "hostpid-0")
	hostPID.HostPID = true
	privileged := hello(t, h, "privileged-0")
	privileged.Containers[0].Security.Privileged = true
	for _, c := range []struct {
		spec executor.InstanceSpec
		flag string
	}{{hostPID, "--allow-host-pid"}, {privileged, "--allow-privileged"}} {
		if err := rt.Start(context.Background(), c.spec); !errors.Is(err, executor.ErrForbidden) || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("Start %s = %v, want ErrForbidden naming %s", c.spec.ID, err, c.flag)
		}
	}
	if got := list(t, rt); len(got) != 0 {
		t.Errorf("refused starts left %+v", got)
	}
}

// testInitContainers starts an instance stage by stage, as the agent does: an init
// container that exits 0, then a sidecar, then the app. Start creates only the stage's
// containers and leaves those that exist alone (the init container is not run again);
// List reads each container's role back; Stop stops the sidecar after the app exited.
func testInitContainers(t *testing.T, h Harness) {
	rt := h.New(t)
	events := rt.Events(context.Background())
	spec := hello(t, h, "staged-0")
	app := spec.Containers[0]
	initc := hello(t, h, "unused", env("EXIT_AFTER", "10ms"), env("EXIT_CODE", "0")).Containers[0]
	initc.Name, initc.Init = "init", 1
	sidecar := hello(t, h, "unused").Containers[0]
	sidecar.Name, sidecar.Init, sidecar.Sidecar = "proxy", 2, true
	spec.Containers = []executor.ContainerSpec{initc, sidecar, app}

	spec.Stage = 1
	start(t, rt, spec)
	if got := list(t, rt); len(got) != 1 || len(got[0].Containers) != 1 || got[0].Containers[0].Name != "init" {
		t.Fatalf("List after Start of stage 1 = %+v, want the init container alone", got)
	}
	if ev := nextEvent(t, events, spec.ID, executor.EventExit); ev.Container != "init" || ev.ExitCode != 0 {
		t.Fatalf("exit %+v, want init's with code 0", ev)
	}
	spec.Stage = 2
	start(t, rt, spec)
	spec.Stage = 0
	start(t, rt, spec)
	got := list(t, rt)
	if len(got) != 1 || len(got[0].Containers) != 3 || !got[0].Running() {
		t.Fatalf("List = %+v, want one instance running its three containers, init completed", got)
	}
	for _, c := range got[0].Containers {
		want := map[string][2]any{"init": {1, false}, "proxy": {2, true}, "app": {0, false}}[c.Name]
		if c.Init != want[0] || c.Sidecar != want[1] {
			t.Errorf("container %s: Init %d Sidecar %v, want %v", c.Name, c.Init, c.Sidecar, want)
		}
		if c.Name == "init" && (c.Status != executor.StatusExited || c.ExitCode != 0 || c.Restarts != 0) {
			t.Errorf("init container %+v, want exited 0 once: Start must not run it again", c)
		}
	}
	waitLog(t, rt, spec.ID, "app", "hello: listening")
	waitLog(t, rt, spec.ID, "proxy", "hello: listening")
	stop(t, rt, spec.ID, waitFor)
	exits := map[string]executor.Event{}
	for len(exits) < 2 {
		ev := nextEvent(t, events, spec.ID, executor.EventExit)
		exits[ev.Container] = ev
	}
	if app, proxy := exits["app"], exits["proxy"]; !proxy.Time.After(app.Time) {
		t.Errorf("the sidecar exited at %v, not after the app (%v)", proxy.Time, app.Time)
	}
}
