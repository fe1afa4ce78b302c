package executor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/moby/sys/mountinfo"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/spec"
)

// recorder is an HTTP server on 127.0.0.1 that notes the paths it is asked for, in order:
// hooks and the hello app's SIGTERM_GET call it, so a test sees what happened when. /fail
// answers 500 while failing is set, /hang answers only when the caller gives up.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	paths   []string
	failing atomic.Bool
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.paths = append(rec.paths, r.URL.Path)
		rec.mu.Unlock()
		switch {
		case r.URL.Path == "/hang":
			<-r.Context().Done()
		case strings.HasPrefix(r.URL.Path, "/fail") && rec.failing.Load():
			http.Error(w, "failing", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// url is the recorder's URL for path.
func (rec *recorder) url(path string) string { return rec.srv.URL + path }

// port is the recorder's port.
func (rec *recorder) port() int {
	var port int
	fmt.Sscanf(rec.srv.URL[strings.LastIndexByte(rec.srv.URL, ':')+1:], "%d", &port)
	return port
}

// seen returns the paths asked for so far.
func (rec *recorder) seen() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.paths)
}

// checkCommand is an exec hook that GETs the recorder's path from inside the container
// (host networking: the container reaches the test's loopback); it fails on a 5xx.
func (rec *recorder) checkCommand(path string) *executor.Hook {
	return &executor.Hook{Exec: &executor.ExecProbe{Command: []string{"/hello", "-check", rec.url(path)}}}
}

// hookedHello is an instance of the hello app whose SIGTERM shows at the recorder as
// /sigterm.
func hookedHello(id, image string, rec *recorder, grace time.Duration, postStart, preStop *executor.Hook) executor.InstanceSpec {
	return executor.InstanceSpec{ID: id, Namespace: "default", Workload: "hooked", SpecHash: "h", GracePeriod: grace,
		Containers: []executor.ContainerSpec{{Name: "app", Image: image, PostStart: postStart, PreStop: preStop,
			Env: envs("LISTEN", "off", "SIGTERM_GET", rec.url("/sigterm"))}}}
}

// TestHooksOnContainerd follows one container through Start, Restart and Stop with an
// exec postStart hook and an httpGet preStop hook: postStart runs before Start returns
// and again at each Restart; preStop runs before SIGTERM at Restart and at Stop, and an
// agent that restarts (a new runtime) still runs it.
func TestHooksOnContainerd(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	rec := newRecorder(t)
	preStop := &executor.Hook{HTTPGet: &executor.HTTPProbe{Scheme: "http", Port: rec.port(), Path: "/prestop"}}
	inst := hookedHello("hooked-0", hello[0], rec, 10*time.Second, rec.checkCommand("/poststart"), preStop)
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.seen(), []string{"/poststart"}; !slices.Equal(got, want) {
		t.Fatalf("after Start: %q, want %q (postStart before Start returns)", got, want)
	}
	if err := rt.Restart(ctx, inst.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.seen(), []string{"/poststart", "/prestop", "/sigterm", "/poststart"}; !slices.Equal(got, want) {
		t.Fatalf("after Restart: %q, want %q", got, want)
	}
	again := openRuntime(t, runtimeOptionsOf(t, rt)...) // the hooks travel with the container
	if err := again.Stop(ctx, inst.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.seen(), []string{"/poststart", "/prestop", "/sigterm", "/poststart", "/prestop", "/sigterm"}; !slices.Equal(got, want) {
		t.Fatalf("after Stop: %q, want %q", got, want)
	}
}

// runtimeOptionsOf returns the options rt was opened with.
func runtimeOptionsOf(t *testing.T, rt *executor.Containerd) []executor.Option {
	t.Helper()
	opts, ok := runtimeOptions.Load(rt)
	if !ok {
		t.Fatal("runtime options not recorded")
	}
	return opts.([]executor.Option)
}

// TestPreStopCutOffByGrace: a preStop hook that outlasts the grace period (an exec'd
// command waiting on the recorder, a sleep) is cut off when the grace period ends;
// SIGTERM follows and Stop returns within the grace period plus a little.
func TestPreStopCutOffByGrace(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	const grace = 2 * time.Second
	long := 30 * time.Second
	for _, tt := range []struct {
		name string
		hook func(rec *recorder) *executor.Hook
	}{
		{"exec", func(rec *recorder) *executor.Hook { return rec.checkCommand("/hang") }},
		{"sleep", func(*recorder) *executor.Hook { return &executor.Hook{Sleep: &long} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			inst := hookedHello("cutoff-"+tt.name, hello[0], rec, grace, nil, tt.hook(rec))
			if err := rt.Start(ctx, inst); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			if err := rt.Stop(ctx, inst.ID, grace); err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			if took < grace || took > grace+2*time.Second {
				t.Errorf("Stop took %v with a grace period of %v and a preStop hook of %v", took, grace, long)
			}
			if got := rec.seen(); !slices.Contains(got, "/sigterm") {
				t.Errorf("the app did not see SIGTERM after the hook was cut off: %q", got)
			}
		})
	}
}

// TestPostStartFailure: a failing postStart kills the container. At Start, the call fails
// with ErrHookFailed and leaves nothing behind; at Restart, it fails too and leaves the
// container exited, and a Restart whose hook succeeds brings it back.
func TestPostStartFailure(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	rec := newRecorder(t)
	rec.failing.Store(true)
	inst := hookedHello("poststart-0", hello[0], rec, 5*time.Second, rec.checkCommand("/fail"), nil)
	if err := rt.Start(ctx, inst); !errors.Is(err, executor.ErrHookFailed) {
		t.Fatalf("Start with a failing postStart: %v, want ErrHookFailed", err)
	}
	if left, err := rt.List(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after a failed Start: %+v, %v; want nothing", left, err)
	}
	if _, err := os.Stat(filepath.Join(stateDirOf(t, rt), "instances", inst.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Start left its files (%v)", err)
	}

	rec.failing.Store(false)
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	rec.failing.Store(true)
	if err := rt.Restart(ctx, inst.ID, "app"); !errors.Is(err, executor.ErrHookFailed) {
		t.Fatalf("Restart with a failing postStart: %v, want ErrHookFailed", err)
	}
	if c := onlyContainer(t, rt); c.Status != executor.StatusExited {
		t.Errorf("after a failed postStart the container is %s, want exited", c.Status)
	}
	rec.failing.Store(false)
	if err := rt.Restart(ctx, inst.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if c := onlyContainer(t, rt); c.Status != executor.StatusRunning || c.Restarts != 2 {
		t.Errorf("after a good Restart: %+v, want running with 2 restarts", c)
	}
}

// TestPostStartCutOff: a postStart hook that does not end is cut off by the runtime's
// bound and fails the start.
func TestPostStartCutOff(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t, executor.WithPostStartTimeout(time.Second))
	rec := newRecorder(t)
	long := time.Hour
	began := time.Now()
	err := rt.Start(context.Background(), hookedHello("poststart-cut-0", hello[0], rec, 5*time.Second, &executor.Hook{Sleep: &long}, nil))
	if !errors.Is(err, executor.ErrHookFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start with a postStart hook of an hour: %v, want ErrHookFailed after the deadline", err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("Start took %v with a postStart bound of 1s", took)
	}
}

// TestGRPCReadinessOnContainerd probes the gRPC health server in a container: not ready
// while it reports NOT_SERVING (its first seconds), ready once it reports SERVING, not
// ready again when it reports NOT_SERVING (SIGUSR1), saying so, and ready after SIGUSR2.
func TestGRPCReadinessOnContainerd(t *testing.T) {
	image := grpcHealthImage(t)
	rt := newRuntime(t)
	ctx := context.Background()
	port := executortest.FreePort(t)
	const servingAfter = 3 * time.Second
	inst := executor.InstanceSpec{ID: "grpc-0", Namespace: "default", Workload: "grpc", SpecHash: "h", GracePeriod: 5 * time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: image,
			Env: envs("PORT", fmt.Sprint(port), "SERVICE", "cart", "SERVING_AFTER", servingAfter.String()),
			Probes: []executor.ProbeSpec{{Kind: executor.ProbeReadiness, GRPC: &executor.GRPCProbe{Port: port, Service: "cart"},
				Timeout: time.Second, Period: 200 * time.Millisecond, SuccessThreshold: 1, FailureThreshold: 1}}}}}
	began := time.Now()
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	out := make(chan executor.ProbeResult)
	startProber(t, rt, inst, "127.0.0.1", out)
	expectReports(t, out, inst.ID, ready(false))
	r := expectReports(t, out, inst.ID, ready(true))[0]
	if at := r.Time.Sub(began); at < servingAfter-500*time.Millisecond {
		t.Errorf("ready %v after start, before the server reported SERVING (%v)", at, servingAfter)
	}
	app := onlyContainer(t, rt)
	killPID(t, app.PID, syscall.SIGUSR1)
	if r := expectReports(t, out, inst.ID, ready(false))[0]; !strings.Contains(r.Message, "grpc health: NOT_SERVING") {
		t.Errorf("not ready because %q, want the NOT_SERVING status named", r.Message)
	}
	killPID(t, app.PID, syscall.SIGUSR2)
	expectReports(t, out, inst.ID, ready(true))
}

// TestMemoryEmptyDirOnContainerd resolves a Deployment with a memory-backed emptyDir:
// the container sees a tmpfs of the sizeLimit, or of its memory limit when that is
// smaller; the host side is a tmpfs writable by all; Stop unmounts and removes it; and
// one left by a crash (containers gone, files not) is removed by CollectInstanceFiles.
func TestMemoryEmptyDirOnContainerd(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	q := func(s string) *spec.Quantity {
		v, err := spec.ParseQuantity(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for _, tt := range []struct {
		id, limit string
		wantSize  string
	}{
		{"mem-0", "", "size=65536k"},      // the sizeLimit, 64Mi
		{"mem-1", "32Mi", "size=32768k"},  // the container's memory limit, smaller
		{"mem-2", "128Mi", "size=65536k"}, // the sizeLimit, smaller than the memory limit
	} {
		port := executortest.FreePort(t)
		c := spec.Container{Name: "app", Image: hello[0],
			Env:          []spec.EnvVar{{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", port)}},
			VolumeMounts: []spec.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}
		if tt.limit != "" {
			c.Resources.Limits = map[string]spec.Quantity{spec.ResourceMemory: *q(tt.limit)}
		}
		d := &spec.Deployment{Metadata: spec.ObjectMeta{Name: "mem", Namespace: "default"},
			Spec: spec.DeploymentSpec{Template: spec.PodTemplate{Spec: spec.PodSpec{Containers: []spec.Container{c},
				Volumes: []spec.Volume{{Name: "scratch", EmptyDir: &spec.EmptyDirVolumeSource{Medium: "Memory", SizeLimit: q("64Mi")}}}}}}}
		inst, err := executor.Resolve(&spec.Set{}, d, tt.id, "node-a", "0123abcd")
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, inst); err != nil {
			t.Fatal(err)
		}
		var line string
		for _, l := range strings.Split(httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/file?path=/proc/mounts", port)), "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == "/scratch" {
				line = l
			}
		}
		if f := strings.Fields(line); len(f) < 4 || f[2] != "tmpfs" || !slices.Contains(strings.Split(f[3], ","), tt.wantSize) {
			t.Errorf("%s: /scratch in the container's /proc/mounts: %q, want a tmpfs with %s", tt.id, line, tt.wantSize)
		}
		hostDir := filepath.Join(stateDirOf(t, rt), "instances", tt.id, "volumes", "scratch")
		if st, err := os.Stat(hostDir); err != nil || st.Mode().Perm() != 0o777 {
			t.Errorf("%s: host side %v (%v), want mode 0777", tt.id, st.Mode(), err)
		}
	}

	// Stop unmounts and removes.
	hostDir := filepath.Join(stateDirOf(t, rt), "instances", "mem-0", "volumes", "scratch")
	if mounted, err := mountinfo.Mounted(hostDir); err != nil || !mounted {
		t.Fatalf("%s is not a mount point (%v)", hostDir, err)
	}
	if err := rt.Stop(ctx, "mem-0", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	assertNoMountUnder(t, filepath.Join(stateDirOf(t, rt), "instances", "mem-0"))

	// A crash between the containers' removal and the files': only the files are left.
	client := rt.Client()
	nsCtx := namespaces.WithNamespace(ctx, rt.Namespace())
	cts, err := client.Containers(nsCtx, `labels."`+executor.LabelInstance+`"==mem-1`)
	if err != nil || len(cts) != 1 {
		t.Fatalf("containers of mem-1: %v, %v", cts, err)
	}
	if task, err := cts[0].Task(nsCtx, nil); err == nil {
		if _, err := task.Delete(nsCtx, containerd.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	if err := cts[0].Delete(nsCtx, containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	again := openRuntime(t, runtimeOptionsOf(t, rt)...)
	if err := again.CollectInstanceFiles(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoMountUnder(t, filepath.Join(stateDirOf(t, rt), "instances", "mem-1"))
	if _, err := os.Stat(filepath.Join(stateDirOf(t, rt), "instances", "mem-2", "volumes", "scratch")); err != nil {
		t.Errorf("CollectInstanceFiles removed the files of a running instance: %v", err)
	}
}

// assertNoMountUnder checks that dir is gone and nothing is mounted at or under it.
func assertNoMountUnder(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", dir, err)
	}
	left, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range left {
		t.Errorf("still mounted: %s (%s)", m.Mountpoint, m.FSType)
	}
}
