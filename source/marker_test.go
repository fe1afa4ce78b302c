package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func openMarker(t *testing.T, dir string) *Marker {
	t.Helper()
	m, err := OpenMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMarkerRemembersWhatTookTheDaemonDown(t *testing.T) {
	dir := t.TempDir()
	m := openMarker(t, dir)
	if m.Suspect() != "" || m.Trusted() != "" {
		t.Fatalf("fresh marker: suspect %q trusted %q", m.Suspect(), m.Trusted())
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Applying("a"))
	must(m.Survived("a"))
	must(m.Applying("b")) // and the daemon goes down before b survives

	m = openMarker(t, dir)
	if m.Suspect() != "b" || m.Trusted() != "a" {
		t.Fatalf("after going down applying b: suspect %q trusted %q, want b and a", m.Suspect(), m.Trusted())
	}
	must(m.Applying("a")) // the trusted revision in b's place does not clear b
	if m = openMarker(t, dir); m.Suspect() != "b" {
		t.Fatalf("suspect %q after applying the trusted revision, want b still", m.Suspect())
	}
	must(m.Applying("c")) // a newer commit
	must(m.Survived("c"))
	if m = openMarker(t, dir); m.Suspect() != "" || m.Trusted() != "c" {
		t.Fatalf("after c survived: suspect %q trusted %q, want none and c", m.Suspect(), m.Trusted())
	}
	must(m.Survived("zzz")) // not being applied: ignored
	if m = openMarker(t, dir); m.Trusted() != "c" {
		t.Errorf("Survived of a commit not applied moved trusted to %q", m.Trusted())
	}
	must(m.Applying("d"))
	must(m.Release("d")) // a clean stop (SIGTERM) before d survived
	if m = openMarker(t, dir); m.Suspect() != "" || m.Trusted() != "c" {
		t.Errorf("after a clean stop applying d: suspect %q trusted %q, want none and c", m.Suspect(), m.Trusted())
	}
	must(m.Applying("e")) // marked by the source, and the daemon stops before its agent took it
	must(m.ReleaseApplying())
	if m = openMarker(t, dir); m.Suspect() != "" || m.Trusted() != "c" {
		t.Errorf("after a clean stop with e not yet taken: suspect %q trusted %q, want none and c", m.Suspect(), m.Trusted())
	}
	must(m.ReleaseApplying()) // nothing being applied: nothing to do
}

func TestMarkerSurvivesDamagedFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, markerFile), `{"applying": "a`)
	if m := openMarker(t, dir); m.Suspect() != "" {
		t.Errorf("suspect %q from a torn marker", m.Suspect())
	}
}

// TestPollerAsksRemoteBeforeClone is the second half of issue #8's crash loop: after the
// bad commit was reverted, restarted agents still applied the bad commit their clone
// held before asking the remote. The remote's head must come first.
func TestPollerAsksRemoteBeforeClone(t *testing.T) {
	up := newUpstream(t)
	bad := up.Commit("bad", map[string]string{"app.yaml": configMap("app", "bad")})
	state, src := t.TempDir(), Source{URL: up.Bare}
	cloneOnce(t, src, state)
	revert := up.Commit("revert", map[string]string{"app.yaml": configMap("app", "good")})

	p := startPoller(t, openRepo(t, src, state), testPollerConfig())
	ev := receive(t, p)
	if ev.Revision.Commit != revert || configValue(ev.Desired, "app") != "good" {
		t.Fatalf("first event at start-up is %s (bad is %s), want the remote's revert %s", ev.Revision.Commit, bad, revert)
	}
}

// TestSuspectRevisionNotReappliedAfterCrash reproduces the crash loop with a real Git
// repository and a real process: an agent (a child process running the poller and the
// marker as the agent does) is killed while it applies a commit; restarted with the remote
// still on that commit, it does not apply it again but goes back to the trusted one, and
// it applies the next commit that arrives.
func TestSuspectRevisionNotReappliedAfterCrash(t *testing.T) {
	up := newUpstream(t)
	good := up.Commit("good", map[string]string{"app.yaml": configMap("app", "v1")})
	state := t.TempDir()

	first := startCrashChild(t, up.Bare, state)
	first.expect("survived " + good)
	bad := up.Commit("bad", map[string]string{"app.yaml": configMap("app", "crash")})
	first.expect("applying " + bad)
	first.kill() // stands for the planner running out of memory on the bad commit

	second := startCrashChild(t, up.Bare, state)
	second.expect("skipped " + bad)
	second.expect("applying " + good)
	second.expect("survived " + good)
	fix := up.Commit("revert", map[string]string{"app.yaml": configMap("app", "v2")})
	second.expect("survived " + fix)
	second.kill()
	if second.seen("applying " + bad) {
		t.Errorf("the restarted agent applied %s again: %q", bad, second.lines)
	}
}

// crashChild is a child process running TestCrashChild, and what it printed.
type crashChild struct {
	t     *testing.T
	cmd   *exec.Cmd
	out   chan string
	lines []string
}

func startCrashChild(t *testing.T, url, state string) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SHOAL_CRASH_CHILD_URL="+url, "SHOAL_CRASH_CHILD_STATE="+state)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &crashChild{t: t, cmd: cmd, out: make(chan string, 100)}
	go func() {
		defer close(c.out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.out <- sc.Text()
		}
	}()
	t.Cleanup(c.kill)
	return c
}

// expect waits for the child to print want, remembering every line before it.
func (c *crashChild) expect(want string) {
	c.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.out:
			if !ok {
				c.t.Fatalf("child exited before printing %q; printed %q", want, c.lines)
			}
			c.lines = append(c.lines, line)
			if line == want {
				return
			}
		case <-timeout:
			c.t.Fatalf("child did not print %q within 30s; printed %q", want, c.lines)
		}
	}
}

func (c *crashChild) seen(line string) bool { return slices.Contains(c.lines, line) }

// kill ends the child with SIGKILL, as the kernel's OOM killer would.
func (c *crashChild) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

// TestCrashChild is the agent TestSuspectRevisionNotReappliedAfterCrash starts: it
// applies what its poller delivers, recording it in the marker as the agent does, and
// hangs (to be killed) on a revision whose ConfigMap says "crash".
func TestCrashChild(t *testing.T) {
	url, state := os.Getenv("SHOAL_CRASH_CHILD_URL"), os.Getenv("SHOAL_CRASH_CHILD_STATE")
	if url == "" {
		t.Skip("run by TestSuspectRevisionNotReappliedAfterCrash")
	}
	marker := openMarker(t, state)
	cfg := testPollerConfig()
	cfg.Marker = marker
	p, err := NewPoller(openRepo(t, Source{URL: url}, filepath.Join(state, "git")), cfg)
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(context.Background())
	for ev := range p.Events() {
		if errors.Is(ev.Err, ErrRevisionSuspect) {
			fmt.Printf("skipped %s\n", ev.Revision.Commit)
		}
		if ev.Desired == nil {
			continue
		}
		commit := ev.Desired.Revision.Commit
		if err := marker.Applying(commit); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("applying %s\n", commit)
		if configValue(ev.Desired, "app") == "crash" {
			select {} // the parent kills this process here
		}
		if err := marker.Survived(commit); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("survived %s\n", commit)
	}
}

// TestPollerRejectsBillionReplicas: the commit of issue #8 that took every agent down is
// rejected by the poller with the limit named, and the last good revision stays.
func TestPollerRejectsBillionReplicas(t *testing.T) {
	up := newUpstream(t)
	up.Commit("good", map[string]string{"app.yaml": configMap("app", "v1")})
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), testPollerConfig())
	good := receive(t, p)
	up.Commit(

		"a billion replicas", map[string]string{"web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1000000000
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
`})

	ev := receive(t, p)
	want := "web.yaml:5: spec.replicas: 1000000000 replicas is over the limit of 10,000 per Deployment (max-replicas-per-deployment)"
	if !errors.Is(ev.Err, ErrRevisionRejected) || len(ev.Diagnostics) != 1 || ev.Diagnostics[0].String() != want {
		t.Fatalf("event err %v, diagnostics %v: want rejected with %q", ev.Err, ev.Diagnostics, want)
	}
	if p.LastGood() != good.Desired {
		t.Error("the last good revision did not stay")
	}
}

// TestMarkerRetriesASuspectOnce: the suspect may be applied again once (the rest of the
// cluster runs it); if the daemon goes down with it again, the next Retry refuses.
func TestMarkerRetriesASuspectOnce(t *testing.T) {
	dir := t.TempDir()
	m, err := OpenMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Applying("c1"); err != nil {
		t.Fatal(err)
	}
	m, _ = OpenMarker(dir) // went down applying c1
	if m.Suspect() != "c1" {
		t.Fatalf("suspect = %q, want c1", m.Suspect())
	}
	if ok, err := m.Retry("c1"); !ok || err != nil {
		t.Fatalf("first Retry = %v, %v; want allowed", ok, err)
	}
	if err := m.Applying("c1"); err != nil {
		t.Fatal(err)
	}
	m, _ = OpenMarker(dir) // went down with it again
	if m.Suspect() != "c1" {
		t.Fatalf("suspect after the retry = %q, want c1", m.Suspect())
	}
	if ok, err := m.Retry("c1"); ok || err != nil {
		t.Fatalf("second Retry = %v, %v; want refused", ok, err)
	}
	if ok, _ := m.Retry("c2"); !ok {
		t.Fatalf("a Retry of another commit was refused")
	}
}
