package agent

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestInstancesMetricCountsThisNode: shoal_instances says "on this node", and the status
// it is made from also lists the other nodes' instances (from gossip). Only this node's
// count, and every phase is exported, at 0 when none is in it, so that a query over a
// phase sees it drop to 0 rather than vanish. Base main counted node-b's instances too
// and left out empty phases.
func TestInstancesMetricCountsThisNode(t *testing.T) {
	a := &Agent{}
	a.status.Store(&Status{Node: "node-a", Workloads: []WorkloadStatus{{
		Namespace: "default", Name: "web", Replicas: 4,
		Instances: []InstanceStatus{
			{ID: "web-1", Node: "node-a", Phase: PhaseReady},
			{ID: "web-2", Node: "node-b", Phase: PhaseReady},
			{ID: "web-3", Node: "node-b", Phase: PhaseReady},
			{ID: "web-4", Node: "node-b", Phase: PhaseRunning},
		},
	}}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	a.Handler(testAPIConfig()).ServeHTTP(rec, req)
	metrics := rec.Body.String()
	for _, line := range []string{
		`shoal_instances{namespace="default",phase="Ready",workload="web"} 1`,
		`shoal_instances{namespace="default",phase="Running",workload="web"} 0`,
		`shoal_instances{namespace="default",phase="CrashLoopBackOff",workload="web"} 0`,
		`shoal_instances{namespace="default",phase="Terminating",workload="web"} 0`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q; it has:\n%s", line, grepLines(metrics, "shoal_instances{"))
		}
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRolloutMetrics: the rollouts this node decided, by outcome, and their durations as
// a histogram; /rollouts answers the newest commit, one named by a prefix, and 404 with
// a JSON error for a commit it does not follow.
func TestRolloutMetrics(t *testing.T) {
	var stats RolloutStats
	stats.record(true, 4*time.Second)
	stats.record(true, 40*time.Second)
	stats.record(false, 700*time.Second)
	commit := strings.Repeat("ab", 20)
	a := &Agent{}
	a.status.Store(&Status{Node: "node-a", Rollouts: stats, Commits: []CommitStatus{{Commit: commit, State: CommitFailed, Reason: "x"}}})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		a.Handler(testAPIConfig()).ServeHTTP(rec, req)
		return rec
	}
	metrics := get("/metrics").Body.String()
	for _, line := range []string{
		`shoal_rollouts_total{outcome="succeeded"} 2`,
		`shoal_rollouts_total{outcome="failed"} 1`,
		`shoal_rollout_duration_seconds_bucket{le="5"} 1`,
		`shoal_rollout_duration_seconds_bucket{le="60"} 2`,
		`shoal_rollout_duration_seconds_bucket{le="1800"} 3`,
		`shoal_rollout_duration_seconds_bucket{le="+Inf"} 3`,
		`shoal_rollout_duration_seconds_sum 744`,
		`shoal_rollout_duration_seconds_count 3`,
		`# TYPE shoal_rollouts_total counter`,
		`# TYPE shoal_rollout_duration_seconds histogram`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q; it has:\n%s", line, grepLines(metrics, "shoal_rollout"))
		}
	}
	for path, want := range map[string]int{"/rollouts": 200, "/rollouts?commit=abababa": 200, "/rollouts?commit=" + commit: 200,
		"/rollouts?commit=cdcdcdcd": 404, "/rollouts?commit=xyz": 404} {
		if rec := get(path); rec.Code != want || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("GET %s = %d %s, want %d JSON", path, rec.Code, rec.Header().Get("Content-Type"), want)
		}
	}
}
