package executor_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/executor"
)

// TestSubPathSwappedForSymlinkRefusedAtRestart is the container escape of issue #8: an
// emptyDir is mounted at /shared and its subPath x at /data; the container replaces
// /shared/x with a symlink to / and exits. The restart must not give it the host's / at
// /data: it is refused, with the reason in the error the agent reports, and nothing of the
// host is bound anywhere.
func TestSubPathSwappedForSymlinkRefusedAtRestart(t *testing.T) {
	rt := newRuntime(t)
	ctx := context.Background()
	image := buildSubPathSwap(t)
	// A file on the host the container must never see; under /data it would if /data
	// were the host's /.
	marker := filepath.Join(t.TempDir(), "host-marker")
	if err := os.WriteFile(marker, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := executor.InstanceSpec{
		ID: "swap-0", Namespace: "default", Workload: "swap", SpecHash: "h1", Revision: "r1", Node: "n",
		Containers: []executor.ContainerSpec{{
			Name: "app", Image: image, PullPolicy: executor.PullIfNotPresent,
			Env: []executor.EnvVar{{Name: "MARKER", Value: marker}},
			Mounts: []executor.Mount{
				{Volume: "scratch", Path: "/shared"},
				{Volume: "scratch", Path: "/data", SubPath: "x"},
			},
		}},
		Volumes: []executor.Volume{{Name: "scratch", Kind: executor.VolumeEmptyDir}},
	}
	if err := rt.EnsureImage(ctx, image, executor.PullIfNotPresent); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if c := waitExited(t, rt, inst.ID); c.ExitCode != 1 {
		t.Fatalf("first run exited with %d, want 1 (the swap failed; see its log)", c.ExitCode)
	}
	instDir := filepath.Join(stateDirOf(t, rt), "instances", inst.ID)
	vol := filepath.Join(instDir, "volumes", "scratch")
	if to, err := os.Readlink(filepath.Join(vol, "x")); err != nil || to != "/" {
		t.Fatalf("the container did not swap x for a link to /: %q, %v", to, err)
	}
	if _, err := os.Stat(filepath.Join(vol, "first-run")); err == nil {
		t.Fatal("/data was the volume's root, not its subPath x")
	}

	err := rt.Restart(ctx, inst.ID, "app")
	if err == nil {
		result := waitFile(t, filepath.Join(vol, "result"))
		t.Fatalf("the restart ran the container with the swapped subPath; it reports: %s", result)
	}
	if !strings.Contains(err.Error(), `subPath "x"`) || !strings.Contains(err.Error(), `"x" is a symlink`) {
		t.Errorf("restart error %q does not say that subPath x is a symlink", err)
	}
	t.Logf("restart refused: %v", err)
	if ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(filepath.Join(instDir, "volume-subpaths"))); len(ms) != 0 {
		t.Errorf("binds left after the refusal: %+v", ms[0])
	}
	if c := onlyContainer(t, rt); c.Status == executor.StatusRunning {
		t.Errorf("container %s runs after the refusal", c.Status)
	}

	if err := rt.Stop(ctx, inst.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(stateDirOf(t, rt))); len(ms) != 0 {
		t.Errorf("mounts left under the state dir after Stop: %+v", ms[0])
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "host" {
		t.Errorf("host marker now %q, %v", b, err)
	}
}

// buildSubPathSwap compiles testdata/subpathswap into an image in the shared registry.
func buildSubPathSwap(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binary := filepath.Join(t.TempDir(), "subpathswap")
	if err := imagebuild.CompileStatic(ctx, "./testdata/subpathswap", binary); err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Image(binary, imagebuild.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ref := shared.registry.Addr + "/subpathswap:v1"
	if err := imagebuild.Push(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// waitExited waits for the only container of instance id to exit.
func waitExited(t *testing.T, rt executor.Runtime, id string) executor.ContainerState {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := onlyContainer(t, rt); c.Status == executor.StatusExited {
			return c
		}
	}
	t.Fatalf("instance %s did not exit", id)
	return executor.ContainerState{}
}

// waitFile waits for a file to exist and returns its content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil {
			return string(b)
		}
	}
	return "nothing in " + path
}
