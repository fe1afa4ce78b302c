package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestProbesAndHooksFromManifests drives the gRPC probe and the lifecycle hooks from
// manifests through an agent on containerd: a gRPC readiness probe holds an instance at
// Running until its server reports SERVING; a failing postStart hook fails the start with
// the reason in status, again and again on the backoff; deleting a Deployment runs its
// preStop hook before the app gets SIGTERM.
func TestProbesAndHooksFromManifests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	grpcImage, err := imagebuild.BuildGRPCHealth(ctx, t.TempDir(), registry)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	rec := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.URL.Path)
	}))
	defer rec.Close()
	recPort := rec.Listener.Addr().(*net.TCPAddr).Port

	grpcPort, deadPort := testsupport.FreePort(t), testsupport.FreePort(t)
	hello := fmt.Sprintf("%s/hello:v1", registry)
	repo := testsupport.NewRepo(t)
	repo.Commit("probes and hooks", map[string]string{
		"grpc.yaml": testsupport.Deployment{Name: "grpc", Replicas: 1, Image: grpcImage, GracePeriod: 2,
			ContainerYAML: fmt.Sprintf(`        env:
        - {name: PORT, value: "%d"}
        - {name: SERVING_AFTER, value: 4s}
        readinessProbe:
          grpc: {port: %d}
          periodSeconds: 1
`, grpcPort, grpcPort)}.YAML(),
		"poststart.yaml": testsupport.Deployment{Name: "poststart", Replicas: 1, Image: hello, GracePeriod: 2,
			ContainerYAML: fmt.Sprintf(`        env:
        - {name: LISTEN, value: "off"}
        lifecycle:
          postStart:
            exec: {command: [/hello, -check, "http://127.0.0.1:%d/"]}
`, deadPort)}.YAML(),
		"prestop.yaml": testsupport.Deployment{Name: "prestop", Replicas: 1, Image: hello, GracePeriod: 5,
			ContainerYAML: fmt.Sprintf(`        env:
        - {name: LISTEN, value: "off"}
        - {name: SIGTERM_GET, value: "http://127.0.0.1:%[1]d/sigterm"}
        lifecycle:
          preStop:
            httpGet: {port: %[1]d, path: /prestop}
`, recPort)}.YAML(),
	})
	a := startAgent(t, repo, "e2e-hooks")

	phase := func(st *agent.Status, name string) (agent.Phase, string) {
		w := workload(st, name)
		if w == nil || len(w.Instances) != 1 {
			return "", ""
		}
		return w.Instances[0].Phase, w.Instances[0].Message
	}
	a.waitFor("the gRPC instance running, not ready", func(st *agent.Status) bool {
		p, _ := phase(st, "grpc")
		return p == agent.PhaseRunning
	})
	a.waitFor("the gRPC instance ready once SERVING", func(st *agent.Status) bool {
		p, _ := phase(st, "grpc")
		return p == agent.PhaseReady
	})
	a.waitFor("the failed postStart in status", func(st *agent.Status) bool {
		p, msg := phase(st, "poststart")
		return p == agent.PhaseStartError && strings.Contains(msg, "postStart hook failed")
	})
	a.waitFor("the preStop instance ready", func(st *agent.Status) bool {
		p, _ := phase(st, "prestop")
		return p == agent.PhaseReady
	})
	repo.Commit("delete prestop", map[string]string{"prestop.yaml": ""})
	a.webhook()
	var got []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !slices.Contains(got, "/sigterm"); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		got = slices.Clone(seen)
		mu.Unlock()
	}
	if want := []string{"/prestop", "/sigterm"}; !slices.Equal(got, want) {
		t.Errorf("the recorder saw %q, want %q: the preStop hook before SIGTERM", got, want)
	}
}
