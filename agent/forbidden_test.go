package agent

import (
	"slices"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/planner"
)

// TestForbiddenInstanceReportedInStatus: an instance asking for a host namespace the node
// does not allow is not placed on it, and the status says why and which flag would allow it.
func TestForbiddenInstanceReportedInStatus(t *testing.T) {
	h := newHarness(t, nil)
	h.push(map[string]string{"pid.yaml": deployment("pid", "hello:v1", 1, "      hostPID: true\n")})
	h.waitFor("refusal in status", func(st *Status) bool {
		w := workload(st, "pid")
		return w != nil && len(w.Instances) == 0 && len(w.Unplaced) == 1 &&
			w.Unplaced[0].Reason == "0/1 nodes are available: 1 node(s) didn't allow hostPID (--allow-host-pid)."
	})
}

// TestAdoptionAfterPermissionsTightenedStops: an instance runs with hostPID on a node that
// allowed it; the agent restarts without --allow-host-pid. On base main it adopted the
// instance and kept it running (and restarted it in place when it crashed), since only
// Start checked. Now it stops it, and the status says why nothing runs.
func TestAdoptionAfterPermissionsTightenedStops(t *testing.T) {
	allow := executor.Permissions{HostPID: true}
	fake := executortest.NewFake(executortest.FakeConfig{
		StateDir:    t.TempDir(),
		Images:      map[string]executortest.Program{"hello:v1": executortest.HelloProgram},
		Permissions: allow, // the runtime would still start it: the agent's own permissions decide
	})
	t.Cleanup(func() { fake.Close() })
	pid := map[string]string{"pid.yaml": deployment("pid", "hello:v1", 1, "      hostPID: true\n")}
	h := newHarness(t, fake, func(c *Config) { c.Permissions = allow })
	h.push(pid)
	h.waitFor("1 ready", readyWith("pid", 1, "hello:v1"))
	h.stop()

	h2 := newHarness(t, fake.Reopen())
	h2.push(pid)
	h2.waitFor("the adopted instance stopped, and why", func(st *Status) bool {
		w := workload(st, "pid")
		return w != nil && len(w.Instances) == 0 && len(w.Unplaced) == 1 &&
			strings.Contains(w.Unplaced[0].Reason, "didn't allow hostPID (--allow-host-pid)")
	})
	if running := pids(t, fake); len(running) != 0 {
		t.Fatalf("still running after the agent restarted without --allow-host-pid: %v", running)
	}
}

// TestNodeMetaCarriesLimitAndPermissions: what this node publishes is what it plans with
// for itself, so that every node computes the same placement.
func TestNodeMetaCarriesLimitAndPermissions(t *testing.T) {
	cfg := DefaultConfig("n1")
	cfg.MaxInstances = 7
	cfg.Permissions = executor.Permissions{HostNetwork: true, SeccompProfileRoot: "/etc/seccomp", HostPaths: []string{"/var/log/"}, Capabilities: []string{"NET_RAW"}}
	m, self := cfg.Meta(), cfg.node()
	want := planner.Permissions{Allow: planner.AllowHostNetwork | planner.AllowSeccompLocalhost, HostPaths: []string{"/var/log"}, Capabilities: []string{"NET_RAW"}}
	if m.MaxInstances != 7 || self.MaxInstances != 7 {
		t.Errorf("max instances: meta %d, planner %d, want 7", m.MaxInstances, self.MaxInstances)
	}
	got := planner.Permissions{Allow: planner.Permission(m.Allows), HostPaths: m.HostPaths, Capabilities: m.Capabilities}
	for _, p := range []planner.Permissions{got, self.Permissions} {
		if p.Allow != want.Allow || !slices.Equal(p.HostPaths, want.HostPaths) || !slices.Equal(p.Capabilities, want.Capabilities) {
			t.Errorf("permissions %+v, want %+v", p, want)
		}
	}
}

// TestDefaultCapabilitiesAgree: the planner's default set, which needs no permission, is
// the executor's.
func TestDefaultCapabilitiesAgree(t *testing.T) {
	var exec []string
	for _, c := range executor.DefaultCapabilities {
		exec = append(exec, strings.TrimPrefix(c, "CAP_"))
	}
	if got := slices.Sorted(slices.Values(planner.DefaultCapabilities)); !slices.Equal(got, exec) {
		t.Fatalf("planner %v, executor %v", got, exec)
	}
}
