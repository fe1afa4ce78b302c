package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestRevisionThatTookTheAgentDownIsSkipped is issue #8's crash loop with the real agent,
// Git and containerd: the agent is SIGKILLed (as the OOM killer did) while it applies a
// commit; restarted with the remote still on that commit, it does not apply it again, says
// so in its status, keeps running the trusted revision, and applies the next commit.
func TestRevisionThatTookTheAgentDownIsSkipped(t *testing.T) {
	repo := testsupport.NewRepo(t)
	port := testsupport.FreePort(t)
	good := repo.Commit("v1", map[string]string{"web.yaml": helloDeployment("web", "v1", 1, port, "")})
	a := startAgent(t, repo, "e2e-suspect")
	a.kill(syscall.SIGTERM)
	a.args = append(a.args, "--survive-after", "1h")
	a.start()
	markerPath := filepath.Join(a.args[slices.Index(a.args, "--state-dir")+1], "revision-marker.json")
	marker := func() (m struct{ Applying, Survived, Suspect string }) {
		data, _ := os.ReadFile(markerPath)
		json.Unmarshal(data, &m)
		return m
	}
	waitMarker := func(what string, cond func(applying, survived string) bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if m := marker(); cond(m.Applying, m.Survived) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for the marker: %s; it holds %+v", what, marker())
			}
		}
	}
	a.waitFor("v1 ready", func(st *agent.Status) bool { w := workload(st, "web"); return w != nil && w.Ready == 1 })
	waitMarker("v1 survived", func(_, survived string) bool { return survived == good })

	// An image that cannot be pulled: the agent never converges on the commit, so it is
	// still being applied when the agent is killed.
	bad := repo.Commit("v2", map[string]string{"web.yaml": helloDeployment("web", "missing", 1, port, "")})
	a.webhook()
	waitMarker("v2 applying", func(applying, _ string) bool { return applying == bad })
	a.kill(syscall.SIGKILL) // before v2 survives: v2 took the agent down

	a.start()
	st := a.waitFor("v2 reported skipped", func(st *agent.Status) bool {
		return st != nil && st.Sync.Rejected != nil && st.Sync.Rejected.Commit == bad
	})
	if !strings.Contains(st.Sync.Error, "went down applying it") {
		t.Errorf("sync error %q does not say why the revision is skipped", st.Sync.Error)
	}
	time.Sleep(4 * time.Second) // several polls of the remote, still on v2
	st = a.status()
	if st.Desired == nil || st.Desired.Commit != good {
		t.Fatalf("desired %v after restart, want the trusted %s and never %s", st.Desired, good, bad)
	}
	if m := marker(); m.Applying == bad || m.Suspect != bad {
		t.Errorf("marker %+v: v2 applied again after the restart", m)
	}
	if w := workload(st, "web"); w == nil || w.Ready != 1 || w.SpecHash == "" {
		t.Errorf("the trusted revision's instance does not run:\n%+v", w)
	}

	fix := repo.Commit("v3", map[string]string{"web.yaml": helloDeployment("web", "v1", 1, port, "        - {name: GREETING, value: fixed}\n")})
	a.webhook()
	a.waitFor("the next commit applied", func(st *agent.Status) bool {
		return st.Desired != nil && st.Desired.Commit == fix && st.Sync.Error == "" && st.Sync.Rejected == nil
	})
}
