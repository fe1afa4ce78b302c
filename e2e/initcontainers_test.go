package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// The init container tests run testdata/step in every container: each appends what it
// does to an events file on a hostPath the test reads, so the file is the order in which
// the containers ran, whatever the agent says.

var (
	stepOnce  sync.Once
	stepImage string
	stepErr   error
)

// buildStep compiles testdata/step and pushes it as <registry>/step:v1, once.
func buildStep(t *testing.T) string {
	t.Helper()
	stepOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		bin := filepath.Join(os.TempDir(), fmt.Sprintf("shoal-e2e-step-%d", os.Getpid()))
		defer os.Remove(bin)
		if stepErr = imagebuild.CompileStatic(ctx, "./testdata/step", bin); stepErr != nil {
			return
		}
		img, err := imagebuild.Image(bin, imagebuild.Config{})
		if err != nil {
			stepErr = err
			return
		}
		stepImage = registry + "/step:v1"
		stepErr = imagebuild.Push(ctx, img, stepImage)
	})
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	return stepImage
}

// stepContainer is a container running step with args, its events going to /out/events.
func stepContainer(image, name string, args string, extra ...string) string {
	lines := []string{
		"- name: " + name,
		"  image: " + image,
		"  args: " + args,
		"  env: [{name: NAME, value: " + name + "}, {name: EVENTS, value: /out/events}, {name: STOP_DELAY, value: 500ms}]",
		"  volumeMounts: [{name: work, mountPath: /work}, {name: out, mountPath: /out}]",
	}
	for _, l := range extra {
		lines = append(lines, "  "+l)
	}
	return "      " + strings.Join(lines, "\n      ") + "\n"
}

// stepDeployment is a Deployment named name whose instances share an emptyDir at /work and
// the host directory out at /out.
func stepDeployment(name, out string, grace int, initContainers, containers string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      terminationGracePeriodSeconds: %[3]d
      volumes:
      - {name: work, emptyDir: {}}
      - {name: out, hostPath: {path: %[2]s, type: Directory}}
      initContainers:
%[4]s      containers:
%[5]s`, name, out, grace, initContainers, containers)
}

// events reads the events file of dir, a line each.
func events(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "events"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitEvents waits until the events file of dir has n lines (a container writes its line
// a moment after the runtime says it started) and returns them.
func waitEvents(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := events(t, dir)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func allowHostPath(dir string) func(*agentProc) {
	return func(a *agentProc) { a.args = append(a.args, "--allow-host-path", dir) }
}

func containerStatus(in agent.InstanceStatus, name string) agent.ContainerStatus {
	for _, c := range in.Containers {
		if c.Name == name {
			return c
		}
	}
	return agent.ContainerStatus{}
}

// TestInitContainers runs an instance whose first init container fails twice before it
// succeeds and whose second writes a file into an emptyDir: the second runs only after the
// first succeeded, and the app container only after both, and it reads the file.
func TestInitContainers(t *testing.T) {
	image := buildStep(t)
	out := t.TempDir()
	repo := testsupport.NewRepo(t)
	repo.Commit("init", map[string]string{"web.yaml": stepDeployment("initweb", out, 2,
		stepContainer(image, "flaky", "[failuntil, /work/runs, \"3\"]")+
			stepContainer(image, "writer", "[write, /work/greeting, made by init]"),
		stepContainer(image, "app", "[app, /work/greeting]"))})
	a := startAgent(t, repo, "e2e-init", allowHostPath(out))
	st := a.waitFor("ready", func(st *agent.Status) bool {
		w := workload(st, "initweb")
		return w != nil && w.Ready == 1
	})
	want := []string{
		"flaky run 1 fails",
		"flaky run 2 fails",
		"flaky run 3 succeeds",
		"writer wrote /work/greeting",
		`app started and read "made by init"`,
	}
	if got := waitEvents(t, out, len(want)); !slices.Equal(got, want) {
		t.Errorf("the containers ran as\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	in := workload(st, "initweb").Instances[0]
	if c := containerStatus(in, "flaky"); c.Restarts != 2 || c.State != "completed" || !c.Init {
		t.Errorf("flaky: %+v, want 2 restarts and completed", c)
	}
	if c := containerStatus(in, "app"); c.State != "running" || c.Restarts != 0 {
		t.Errorf("app: %+v, want running, never restarted", c)
	}
}

// TestSidecar runs an instance with an init container, a sidecar and an app container that
// crashes once: the sidecar keeps running (same PID, started once) through the app's
// restart and through an agent restart that adopts the instance without running its init
// container again; when the instance stops, the sidecar gets SIGTERM only after the app
// container has exited.
func TestSidecar(t *testing.T) {
	image := buildStep(t)
	out := t.TempDir()
	repo := testsupport.NewRepo(t)
	repo.Commit("sidecar", map[string]string{"web.yaml": stepDeployment("sideweb", out, 10,
		stepContainer(image, "setup", "[write, /work/setup, done]")+
			stepContainer(image, "proxy", "[sidecar]", "restartPolicy: Always"),
		stepContainer(image, "app", "[crashonce, /work/crashed]"))})
	a := startAgent(t, repo, "e2e-sidecar", allowHostPath(out))
	st := a.waitFor("the app's first run, beside the sidecar", func(st *agent.Status) bool {
		w := workload(st, "sideweb")
		return w != nil && len(w.Instances) == 1 && containerStatus(w.Instances[0], "app").State == "running" &&
			containerStatus(w.Instances[0], "app").Restarts == 0 && containerStatus(w.Instances[0], "proxy").PID != 0
	})
	firstPID := containerStatus(workload(st, "sideweb").Instances[0], "proxy").PID
	readyAfterCrash := func(st *agent.Status) bool {
		w := workload(st, "sideweb")
		return st.Converged && w != nil && w.Ready == 1 && containerStatus(w.Instances[0], "app").Restarts == 1 &&
			containerStatus(w.Instances[0], "proxy").PID != 0
	}
	st = a.waitFor("ready after the app's crash", readyAfterCrash)
	in := workload(st, "sideweb").Instances[0]
	proxy := containerStatus(in, "proxy")
	if proxy.Restarts != 0 || !proxy.Sidecar || proxy.State != "running" || proxy.PID != firstPID {
		t.Errorf("sidecar: %+v, want running, never restarted, PID %d as before the app crashed", proxy, firstPID)
	}
	want := []string{"setup wrote /work/setup", "proxy started", "app started and crashes", "app started"}
	if got := waitEvents(t, out, len(want)); !slices.Equal(got, want) {
		t.Errorf("the containers ran as\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// A new agent adopts the instance as it runs: nothing runs again.
	a.kill(syscall.SIGKILL)
	a.start()
	st = a.waitFor("adopted and ready", readyAfterCrash)
	in = workload(st, "sideweb").Instances[0]
	if got := containerStatus(in, "proxy").PID; got != proxy.PID {
		t.Errorf("sidecar PID %d after the agent restarted, was %d", got, proxy.PID)
	}
	if got := events(t, out); !slices.Equal(got, want) {
		t.Errorf("after the agent restarted the containers ran as\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Stopping the instance stops the app first; the sidecar only once the app exited.
	repo.Commit("remove", map[string]string{"web.yaml": ""})
	a.webhook()
	a.waitFor("removed", func(st *agent.Status) bool { return workload(st, "sideweb") == nil && st.Converged })
	want = append(want, "app got SIGTERM", "app exits", "proxy got SIGTERM", "proxy exits")
	if got := waitEvents(t, out, len(want)); !slices.Equal(got, want) {
		t.Errorf("the instance stopped as\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
