package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestNodePermissionsAndLimitsInGossip runs two nodes configured differently: only node2
// allows hostNetwork, and node1 runs at most one instance. Each node publishes its own
// values in its signed metadata, so both compute the same placement: the hostNetwork
// Deployment runs on node2 only, never Forbidden on node1, and node1 is given one instance
// of a plain Deployment, not node2's default of 110. On base main each node planned
// every node with its own flags: node1 placed hostNetwork replicas on itself, where its
// executor refused them (Forbidden forever), and the nodes disagreed on node1's limit.
func TestNodePermissionsAndLimitsInGossip(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("empty", map[string]string{"README": "permissions\n"})
	c := newCluster(t, repo)
	c.flags = map[int][]string{1: {"--max-instances-per-node", "1"}, 2: {"--allow-host-network"}}
	c.start(1, c.key)
	c.start(2, c.key)
	both := func(st *agent.Status) bool {
		alive := 0
		for _, n := range st.Nodes {
			if n.Alive {
				alive++
			}
		}
		return alive == 2
	}
	c.agents[1].waitFor("two members", both)
	c.agents[2].waitFor("two members", both)

	hostnet := strings.Replace(idleDeployment("hostnet", 3), "    spec:\n", "    spec:\n      hostNetwork: true\n", 1)
	repo.Commit("work", map[string]string{"hostnet.yaml": hostnet, "idle.yaml": idleDeployment("idle", 4)})
	want := fmt.Sprint(map[string]int{"hostnet": 3, "idle": 4})
	deadline := time.Now().Add(90 * time.Second)
	for fmt.Sprint(c.running()) != want {
		if time.Now().After(deadline) {
			t.Fatalf("running %v, want %s", c.running(), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, i := range []int{1, 2} {
		st := c.agents[i].waitFor("every replica ready", func(st *agent.Status) bool {
			return len(where(st, "hostnet")) == 3 && len(where(st, "idle")) == 4
		})
		if got := where(st, "hostnet"); fmt.Sprint(got) != "[node2 node2 node2]" {
			t.Errorf("node%d sees hostnet on %v, want all on node2", i, got)
		}
		onNode1 := 0
		for _, n := range where(st, "idle") {
			if n == "node1" {
				onNode1++
			}
		}
		if onNode1 > 1 {
			t.Errorf("node%d sees %d idle instances on node1, which runs at most 1", i, onNode1)
		}
		for _, name := range []string{"hostnet", "idle"} {
			w := workload(st, name)
			for _, in := range w.Instances {
				if in.Phase == agent.PhaseForbidden {
					t.Errorf("node%d: %s %s on %s is Forbidden: %s", i, name, in.ID, in.Node, in.Message)
				}
			}
			if len(w.Unplaced) > 0 {
				t.Errorf("node%d: %s unplaced: %+v", i, name, w.Unplaced)
			}
		}
	}
}
