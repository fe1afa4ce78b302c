package agent

import (
	"net/http/httptest"
	"strings"
	"testing"
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
