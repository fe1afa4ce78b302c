package agent

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/shoalhq/shoal/gossip"
)

// joinCluster is a Cluster that has or has not joined, for the agent's side
// of a failed join. (gossip's own tests join real memberlist nodes.)
type joinCluster struct {
	mu      gosync.Mutex
	err     error
	changes chan struct{}
}

func (c *joinCluster) Snapshot() gossip.View                    { return gossip.View{} }
func (c *joinCluster) Changes() <-chan struct{}                 { return c.changes }
func (c *joinCluster) SetInstances([]gossip.InstanceInfo) error { return nil }
func (c *joinCluster) UpdateNode(gossip.Meta) error             { return nil }
func (c *joinCluster) Decide(key string, body []byte) (gossip.Decision, error) {
	return gossip.Decision{Key: key, Body: body}, nil
}
func (c *joinCluster) JoinError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *joinCluster) join() {
	c.mu.Lock()
	c.err = nil
	c.mu.Unlock()
	c.changes <- struct{}{}
}

// TestNotJoinedRunsNothing: a node told to join a cluster that it cannot join
// (here: a wrong gossip key) starts nothing and says why in status and
// /readyz; once it joins, it runs its share. Base main ran every workload on
// such a node, as a cluster of one beside the real cluster.
func TestNotJoinedRunsNothing(t *testing.T) {
	cluster := &joinCluster{err: errors.New("gossip: not joined: no installed keys could decrypt the message"), changes: make(chan struct{}, 1)}
	h := newHarnessOpts(t, nil, nil, []Option{WithCluster(cluster)})
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h.waitFor("the revision in force, and why nothing runs", func(st *Status) bool {
		return st.Desired != nil && strings.Contains(st.NotJoined, "no installed keys")
	})
	time.Sleep(300 * time.Millisecond) // what would have started by now
	if n := len(h.agent.Status().Workloads[0].Instances); n != 0 {
		t.Fatalf("%d instances while not joined: %s", n, dump(h.agent.Status()))
	}
	if h.agent.Status().Converged {
		t.Fatalf("converged while not joined: %s", dump(h.agent.Status()))
	}
	rec := httptest.NewRecorder()
	h.agent.Handler(testAPIConfig()).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no installed keys") {
		t.Fatalf("/readyz: %d %q, want 503 naming the reason", rec.Code, rec.Body.String())
	}

	cluster.join()
	h.waitFor("2 ready once joined", readyWith("web", 2, "hello:v1"))
}
