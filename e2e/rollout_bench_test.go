package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
)

// BenchmarkRevert runs three nodes with a pod network and, in each iteration, commits a
// web spec whose image exits at start, then a good one. It measures:
//
//   - revert-ms: from the failure verdict (its time as recorded by the node that made it)
//     to every node showing web as three ready instances of the previous spec and nothing
//     else — the previous version serving alone again, everywhere;
//   - status-ms: from the good commit's success verdict to its commit status arriving at
//     the webhook;
//   - rollout-ms, the baseline: from pushing the good commit to its success verdict, a
//     whole forward rollout of the same three instances in the same run.
//
// Run it with `go test ./e2e -run '^$' -bench Revert -benchtime 5x -count 1`.
func BenchmarkRevert(b *testing.B) {
	c, recv := newReportingCluster(b)
	all := []int{1, 2, 3}
	good := c.push("web", rolloutFiles(webDeployment("v1", "        - {name: ITERATION, value: \"0\"}\n"), "v1"), all...)
	cs := c.waitFate(good, agent.CommitSucceeded, all...)
	var revert, status, rollout []time.Duration
	for i := 0; i < b.N; i++ {
		goodHash := webOf(cs).SpecHash
		crash := c.push("web exits at start", rolloutFiles(exitsAtStart(webDeployment("v2", fmt.Sprintf(
			"        - {name: ITERATION, value: \"%d\"}\n", i))), "v1"), all...)
		failed := webOf(c.waitFate(crash, agent.CommitFailed, all...)).Decided
		var done time.Time
		for _, n := range all {
			c.agents[n].waitFor("web back on the previous spec", func(st *agent.Status) bool { return webOn(st, goodHash) })
			done = time.Now()
		}
		revert = append(revert, done.Sub(failed))

		pushed := time.Now()
		good = c.push("web fixed", rolloutFiles(webDeployment("v1", fmt.Sprintf("        - {name: ITERATION, value: \"%d\"}\n", i+1)), "v1"), all...)
		cs = c.waitFate(good, agent.CommitSucceeded, all...)
		succeeded := webOf(cs).Decided
		rollout = append(rollout, succeeded.Sub(pushed))
		deadline := time.Now().Add(30 * time.Second)
		for recv.sentAt(good, "success").IsZero() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if at := recv.sentAt(good, "success"); !at.IsZero() {
			status = append(status, at.Sub(succeeded))
		} else {
			b.Fatalf("no success status for %s within 30 s", good[:12])
		}
	}
	b.ReportMetric(float64(median(revert).Milliseconds()), "revert-ms")
	b.ReportMetric(float64(slices.Max(revert).Milliseconds()), "revert-max-ms")
	b.ReportMetric(float64(median(status).Milliseconds()), "status-ms")
	b.ReportMetric(float64(slices.Max(status).Milliseconds()), "status-max-ms")
	b.ReportMetric(float64(median(rollout).Milliseconds()), "rollout-ms")
	b.ReportMetric(0, "ns/op")
}

// webOf is web's rollout in a commit's fate.
func webOf(cs *agent.CommitStatus) agent.WorkloadRollout {
	for _, w := range cs.Workloads {
		if w.Name == "web" {
			return w
		}
	}
	return agent.WorkloadRollout{}
}

// sentAt is when a receiver took the state of commit; zero if none did.
func (r *receivers) sentAt(commit, state string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.deliveries {
		if d.payload.Commit == commit && d.payload.State == state {
			return d.at
		}
	}
	return time.Time{}
}
