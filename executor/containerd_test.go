package executor_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/spec"
)

func TestContainerdConformance(t *testing.T) {
	_, hello := env(t)
	executortest.RunConformance(t, executortest.Harness{
		New: func(t *testing.T) executor.Runtime { return newRuntime(t) },
		Reopen: func(t *testing.T, rt executor.Runtime) executor.Runtime {
			opts, _ := runtimeOptions.Load(rt)
			return openRuntime(t, opts.([]executor.Option)...)
		},
		Kill: func(t *testing.T, _ executor.Runtime, c executor.ContainerState, sig syscall.Signal) {
			killPID(t, c.PID, sig)
		},
		Image:        hello[0],
		MissingImage: strings.TrimSuffix(hello[0], ":v1") + ":missing",
	})
}

// TestHelloServesWhatResolveGave deploys the hello app through Resolve and checks, over
// HTTP, that the container got its image's VERSION, its env from a ConfigMap and a Secret,
// and its volumes; and on the host, that the secret lives on a tmpfs with mode 0400 and
// that runc kept its state out of /run/containerd.
func TestHelloServesWhatResolveGave(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	port := executortest.FreePort(t)
	set := &spec.Set{
		ConfigMaps: []*spec.ConfigMap{{Metadata: spec.ObjectMeta{Name: "cfg", Namespace: "default"},
			Data: map[string]string{"greeting": "bonjour", "app.conf": "mode=demo\n"}}},
		Secrets: []*spec.Secret{{Metadata: spec.ObjectMeta{Name: "creds", Namespace: "default"},
			Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	d := &spec.Deployment{
		Metadata: spec.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: spec.DeploymentSpec{Template: spec.PodTemplate{Spec: spec.PodSpec{
			Containers: []spec.Container{{
				Name:  "app",
				Image: hello[1],
				Env: []spec.EnvVar{
					{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", port)},
					{Name: "MESSAGE", ValueFrom: &spec.EnvVarSource{ConfigMapKeyRef: &spec.KeySelector{Name: "cfg", Key: "greeting"}}},
					{Name: "PASSWORD", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: "creds", Key: "password"}}},
				},
				VolumeMounts: []spec.VolumeMount{
					{Name: "config", MountPath: "/etc/hello"},
					{Name: "secret", MountPath: "/run/secrets/hello"},
					{Name: "scratch", MountPath: "/scratch"},
				},
			}},
			Volumes: []spec.Volume{
				{Name: "config", ConfigMap: &spec.ConfigMapVolumeSource{Name: "cfg"}},
				{Name: "secret", Secret: &spec.SecretVolumeSource{SecretName: "creds"}},
				{Name: "scratch", EmptyDir: &spec.EmptyDirVolumeSource{}},
			},
		}}},
	}
	inst, err := executor.Resolve(set, d, "hello-abc-0", "node-a", "0123abcd")
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.EnsureImage(ctx, hello[1], executor.PullAlways); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	checks := []struct{ path, want string }{
		{"/", "bonjour (version v2)\n"},
		{"/env/PASSWORD", "s3cret"},
		{"/file?path=/etc/hello/app.conf", "mode=demo\n"},
		{"/file?path=/run/secrets/hello/password", "s3cret"},
	}
	for _, c := range checks {
		if got := httpGet(t, base+c.path); got != c.want {
			t.Errorf("GET %s = %q, want %q", c.path, got, c.want)
		}
	}

	stateDir := stateDirOf(t, rt)
	secretDir := filepath.Join(stateDir, "instances", inst.ID, "volumes", "secret")
	if mounted, err := mountinfo.Mounted(secretDir); err != nil || !mounted {
		t.Errorf("secret volume %s is not a mount (%v): its content would be on disk", secretDir, err)
	}
	mounts, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(secretDir))
	if len(mounts) != 1 || mounts[0].FSType != "tmpfs" {
		t.Errorf("secret volume mounts = %+v, want one tmpfs", mounts)
	}
	if fi, err := os.Stat(filepath.Join(secretDir, "password")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("secret file: %v, %v; want mode 0400", fi, err)
	}
	if _, err := os.Stat(filepath.Join("/run/containerd/runc", rt.Namespace())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("runc state landed in the shared /run/containerd/runc (%v)", err)
	}

	if err := rt.Stop(ctx, inst.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := mountinfo.Mounted(secretDir); mounted {
		t.Errorf("Stop left the secret tmpfs mounted")
	}
	if _, err := os.Stat(filepath.Join(stateDir, "instances", inst.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left the instance directory (%v)", err)
	}
}

// killPID signals a container's process from outside, refusing PID 0, which would signal
// the test's own process group.
func killPID(t *testing.T, pid uint32, sig syscall.Signal) {
	t.Helper()
	if pid == 0 {
		t.Fatal("no PID to kill")
	}
	if err := syscall.Kill(int(pid), sig); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// noKeepAlive leaves no idle connection (and goroutine) behind a test.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// stateDirOf finds the state dir a test runtime was opened with.
func stateDirOf(t *testing.T, rt executor.Runtime) string {
	d, _ := env(t)
	return filepath.Join(d.StateDir, rt.(*executor.Containerd).Namespace())
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := noKeepAlive.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond) // the app may still be starting
	}
}

// TestLabelLessContainerUntouched puts a container without Shoal's labels in the runtime's
// namespace: List does not show it, no event names it, Stop of an instance does not touch it.
func TestLabelLessContainerUntouched(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := namespaces.WithNamespace(context.Background(), rt.Namespace())
	events := rt.Events(ctx)
	if err := rt.EnsureImage(ctx, hello[0], executor.PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	foreign := startForeign(t, rt, "foreign", hello[0])

	ours := executortest.FreePort(t)
	inst := executor.InstanceSpec{ID: "foreign", Namespace: "default", Workload: "w", SpecHash: "h", GracePeriod: time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0], Env: []executor.EnvVar{{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", ours)}}}}}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	got, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Containers) != 1 || got[0].Containers[0].RuntimeID == foreign.ID() {
		t.Fatalf("List = %+v, want only Shoal's instance", got)
	}
	if err := rt.Stop(ctx, inst.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	task, err := foreign.Task(ctx, nil)
	if err != nil {
		t.Fatalf("the foreign container lost its task: %v", err)
	}
	if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
		t.Errorf("foreign task status %v, %v; want running", st.Status, err)
	}
	killPID(t, task.Pid(), syscall.SIGKILL)
	for {
		select {
		case ev := <-events:
			if ev.InstanceID != inst.ID {
				t.Errorf("event about a container that is not Shoal's: %+v", ev)
			}
		case <-time.After(time.Second):
			return // the foreign exit had ample time to be (wrongly) reported
		}
	}
}

// startForeign starts a container with the client directly, without Shoal's labels, and
// removes it when the test ends.
func startForeign(t *testing.T, rt *executor.Containerd, id, ref string) containerd.Container {
	t.Helper()
	client := rt.Client()
	ctx := namespaces.WithNamespace(context.Background(), rt.Namespace())
	img, err := client.GetImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := env(t)
	ct, err := client.NewContainer(ctx, id,
		containerd.WithNewSnapshot(id, img),
		containerd.WithRuntime(plugin.RuntimeRuncV2, &options.Options{Root: d.RuncRoot}),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithHostNamespace(specs.NetworkNamespace),
			oci.WithEnv([]string{"LISTEN=127.0.0.1:0"})),
		containerd.WithContainerLabels(map[string]string{"owner": "someone-else"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if task, err := ct.Task(ctx, nil); err == nil {
			task.Delete(ctx, containerd.WithProcessKill)
		}
		ct.Delete(ctx, containerd.WithSnapshotCleanup)
	})
	task, err := ct.NewTask(ctx, cio.NullIO, func(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
		ti.Options = &options.Options{Root: d.RuncRoot}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return ct
}

// TestLogRotation fills a log past a small cap: the executor copy-truncates it, keeps one
// rotated file, and Logs still reads the last lines across both.
func TestLogRotation(t *testing.T) {
	_, hello := env(t)
	const capBytes = 4096
	rt := newRuntime(t, executor.WithLogMaxBytes(capBytes), executor.WithLogCheckInterval(20*time.Millisecond))
	ctx := context.Background()
	port := executortest.FreePort(t)
	inst := executor.InstanceSpec{ID: "chatty-0", Namespace: "default", Workload: "chatty", SpecHash: "h", GracePeriod: time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0], Env: []executor.EnvVar{
			{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", port)}, {Name: "LOG_EVERY", Value: "1ms"}}}}}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	logPath := executor.LogPath(stateDirOf(t, rt), inst.ID, "app")
	deadline := time.Now().Add(30 * time.Second)
	for {
		rotated, err := os.Stat(logPath + ".1")
		if err == nil && rotated.Size() > capBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotated log over %d bytes after 30s (%v)", capBytes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A tick line is ~40 bytes and one comes per millisecond: between two checks the file
	// grows by about a kilobyte, so four times the cap means rotation has stopped working.
	for range 5 {
		if fi, err := os.Stat(logPath); err != nil || fi.Size() > 4*capBytes {
			t.Fatalf("log %s: %v, size %d: rotation does not keep it near the %d byte cap", logPath, err, fi.Size(), capBytes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if files, _ := filepath.Glob(logPath + "*"); len(files) != 2 {
		t.Errorf("log files %v, want the log and one rotated file", files)
	}
	var tail strings.Builder
	if err := rt.Logs(ctx, inst.ID, "app", executor.LogOptions{Tail: 50}, &tail); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(tail.String(), "hello: tick"); n < 45 {
		t.Errorf("Tail 50 after rotation gave %d tick lines:\n%s", n, tail.String())
	}
}

// TestReconnect restarts containerd under a running instance: the instance keeps running
// (same PID), the runtime works again once the daemon is back, and the event stream
// subscribes again by itself.
func TestReconnect(t *testing.T) {
	d, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	events := rt.Events(ctx)
	spec := executor.InstanceSpec{ID: "survivor-0", Namespace: "default", Workload: "survivor", SpecHash: "h", GracePeriod: 5 * time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0], Env: []executor.EnvVar{
			{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", executortest.FreePort(t))}}}}}
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	before := onlyContainer(t, rt)

	if err := d.Restart(); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	var after executor.ContainerState
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := rt.List(ctx)
		if err == nil && len(got) == 1 {
			after = got[0].Containers[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runtime did not work again within 30s of the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if after.PID != before.PID || after.Status != executor.StatusRunning {
		t.Errorf("after the restart: %+v, want the same running PID %d", after, before.PID)
	}
	// Give the event stream time to notice the break and subscribe again; then an exit must
	// come through it (or through the catch-up after it subscribes).
	time.Sleep(time.Second)
	killPID(t, after.PID, syscall.SIGKILL)
	select {
	case ev := <-events:
		if ev.Kind != executor.EventExit || ev.PID != after.PID || ev.ExitCode != 137 {
			t.Errorf("event after the restart = %+v, want the exit of PID %d", ev, after.PID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit event within 30s of a kill after containerd restarted")
	}
	second := spec
	second.ID = "newcomer-0"
	second.Containers = []executor.ContainerSpec{spec.Containers[0]}
	second.Containers[0].Env = []executor.EnvVar{{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", executortest.FreePort(t))}}
	if err := rt.Start(ctx, second); err != nil {
		t.Errorf("Start after the restart: %v", err)
	}
}

// TestOOMSurvivesAdoption checks that an OOM kill is still reported as such by a runtime
// opened after it happened, from the cgroup's counter rather than from the missed event.
func TestOOMSurvivesAdoption(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	events := rt.Events(ctx)
	spec := executor.InstanceSpec{ID: "hungry-1", Namespace: "default", Workload: "hungry", SpecHash: "h", GracePeriod: time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0], MemoryLimitBytes: 48 << 20, Env: []executor.EnvVar{
			{Name: "LISTEN", Value: "127.0.0.1:0"}, {Name: "ALLOC_MB", Value: "256"}}}}}
	if err := rt.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Kind == executor.EventExit {
			break
		}
	}
	opts, _ := runtimeOptions.Load(rt)
	later := openRuntime(t, opts.([]executor.Option)...)
	if c := onlyContainer(t, later); !c.OOMKilled || c.ExitCode != 137 {
		t.Errorf("a runtime opened after the OOM kill lists %+v, want OOMKilled", c)
	}
}

func onlyContainer(t *testing.T, rt executor.Runtime) executor.ContainerState {
	t.Helper()
	got, err := rt.List(context.Background())
	if err != nil || len(got) != 1 || len(got[0].Containers) != 1 {
		t.Fatalf("List = %+v, %v; want one instance with one container", got, err)
	}
	return got[0].Containers[0]
}

// TestPullWithCredentials pulls from a registry that wants basic auth: refused without a
// Docker config, pulled with one.
func TestPullWithCredentials(t *testing.T) {
	env(t)
	backend := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	open := httptest.NewServer(backend)
	defer open.Close()
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "alice" || pass != "wonderland" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer locked.Close()
	img, err := imagebuild.Image(filepath.Join(shared.imageDir, "hello"), imagebuild.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := imagebuild.Push(ctx, img, open.Listener.Addr().String()+"/private/hello:v1"); err != nil {
		t.Fatal(err)
	}
	ref := locked.Listener.Addr().String() + "/private/hello:v1"

	if err := newRuntime(t).EnsureImage(ctx, ref, executor.PullAlways); !errors.Is(err, executor.ErrImagePull) {
		t.Errorf("pull without credentials = %v, want ErrImagePull", err)
	}
	config := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte("alice:wonderland"))
	os.WriteFile(config, []byte(`{"auths":{"`+locked.Listener.Addr().String()+`":{"auth":"`+auth+`"}}}`), 0o600)
	if err := newRuntime(t, executor.WithDockerConfig(config)).EnsureImage(ctx, ref, executor.PullAlways); err != nil {
		t.Errorf("pull with credentials: %v", err)
	}
}
