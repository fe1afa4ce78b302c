package containerdtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The image pushes leave keep-alive connections behind.
	remote.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestRestartKeepsContainers restarts the daemon under a running container, then closes it
// and checks that nothing of it is left: no shim, no container process, no mount, no files.
func TestRestartKeepsContainersAndCloseRemovesAll(t *testing.T) {
	SkipShort(t)
	d, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	task := runHello(t, d)
	oldPID := d.PID()
	if err := d.Restart(); err != nil {
		t.Fatal(err)
	}
	if d.PID() == oldPID || d.ping() != nil {
		t.Fatalf("after Restart: PID %d (was %d), ping %v", d.PID(), oldPID, d.ping())
	}
	if !alive(task) {
		t.Fatal("the container did not survive the daemon's restart")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, d, task)
}

// TestStartSweepsStaleDaemons leaves a daemon killed with its container running, as a test
// binary that timed out does, and checks that the next Start removes what it left.
func TestStartSweepsStaleDaemons(t *testing.T) {
	SkipShort(t)
	stale, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	task := runHello(t, stale)
	socket := shimSocket(stale.Socket, "sweep", "hello")
	if _, err := os.Stat(socket); err != nil {
		t.Fatalf("the shim's socket is not where shimSocket says: %v", err)
	}
	stale.cmd.Process.Kill()
	<-stale.exited
	old := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(stale.Dir, old, old); err != nil {
		t.Fatal(err)
	}
	fresh := New(t)
	assertGone(t, stale, task)
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed shim's socket %s is left (%v)", socket, err)
	}
	if fresh.ping() != nil {
		t.Error("the new daemon does not answer")
	}
}

// runHello runs the hello image in the daemon with the client directly.
func runHello(t *testing.T, d *Daemon) uint32 {
	t.Helper()
	reg, err := imagebuild.StartRegistry("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	refs, err := imagebuild.BuildHello(ctx, t.TempDir(), reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	client, err := containerd.New(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, "sweep")
	img, err := client.Pull(ctx, refs[0], containerd.WithPullUnpack, containerd.WithResolver(docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost)),
	})))
	if err != nil {
		t.Fatal(err)
	}
	runc := &options.Options{Root: d.RuncRoot}
	ct, err := client.NewContainer(ctx, "hello",
		containerd.WithNewSnapshot("hello", img),
		containerd.WithRuntime(plugin.RuntimeRuncV2, runc),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithHostNamespace(specs.NetworkNamespace), oci.WithEnv([]string{"LISTEN=127.0.0.1:0"})))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ct.NewTask(ctx, cio.NullIO, func(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
		ti.Options = runc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return task.Pid()
}

func alive(pid uint32) bool { return pid > 0 && syscall.Kill(int(pid), 0) == nil }

func assertGone(t *testing.T, d *Daemon, task uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(task) { // a killed process lingers until its parent or init reaps it
		if time.Now().After(deadline) {
			t.Fatalf("container process %d still alive", task)
		}
		time.Sleep(20 * time.Millisecond)
	}
	procs, _ := processes()
	for _, p := range procs {
		if strings.Contains(p.cmdline, d.Socket) {
			t.Errorf("process %d still refers to the daemon: %q", p.pid, p.cmdline)
		}
	}
	if mounts, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(d.Dir)); len(mounts) > 0 {
		t.Errorf("mounts left under %s: %d", d.Dir, len(mounts))
	}
	if _, err := os.Stat(d.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind (%v)", d.Dir, err)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", "sweep", "hello")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the container's cgroup is left (%v)", err)
	}
}
