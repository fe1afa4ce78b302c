package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// heldListing is a runtime whose listings wait until release is closed, as a containerd
// that is slow to answer after a reboot.
type heldListing struct {
	executor.Runtime
	release chan struct{}
}

func (r heldListing) List(ctx context.Context) ([]executor.InstanceState, error) {
	select {
	case <-r.release:
		return r.Runtime.List(ctx)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestReadyzWaitsForAdoption: /readyz promises 200 only once the instances already
// running were adopted. With a revision in force but the first runtime listing not done,
// the agent does not know what runs on its node, so it is not ready. Base main answered
// 200 as soon as a revision was in force.
func TestReadyzWaitsForAdoption(t *testing.T) {
	held := heldListing{release: make(chan struct{})}
	h := newHarnessWrapped(t, nil, func(rt executor.Runtime) executor.Runtime { held.Runtime = rt; return held })
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		h.agent.Handler(testAPIConfig()).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 1, "")})
	h.waitFor("the revision in force", func(st *Status) bool { return st.Desired != nil })
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "adopted") {
		t.Fatalf("/readyz before the first listing: %d %q, want 503 saying instances are not adopted yet", code, body)
	}

	close(held.release)
	h.waitFor("1 ready", readyWith("web", 1, "hello:v1"))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, body := readyz()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after adoption: %d %q, want 200", code, body)
		}
	}
}
