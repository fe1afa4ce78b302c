package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestPodNetworkGRPCProbeAndHookAddress runs a gRPC readiness probe and a preStop hook on
// the pod network, where an instance has an address of its own: the probe reaches the
// server there (Running until SERVING, then Ready), and the preStop httpGet goes to the
// instance's address too (the hook aims at a port nothing listens on, so its failure,
// logged with the address it tried, shows where it went).
func TestPodNetworkGRPCProbeAndHookAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	grpcImage, err := imagebuild.BuildGRPCHealth(ctx, t.TempDir(), registry)
	if err != nil {
		t.Fatal(err)
	}
	repo := testsupport.NewRepo(t)
	repo.Commit("nothing yet", map[string]string{"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty}\n"})
	// Two nodes, for a node alone does not join; the instance is pinned to node1.
	on := []string{"--pod-network", "on"}
	c := newClusterWith(t, repo, map[int][]string{1: on, 2: on}, 1, 2)
	a := c.agents[1]
	// The nodes cannot reach the test's loopback registry: the image goes in first.
	for _, node := range []string{"node1", "node2"} {
		ns := fmt.Sprintf("%s-%s", c.net.prefix, node)
		if out, err := exec.Command("ctr", "-a", daemon.Socket, "-n", ns, "images", "pull", "--plain-http", grpcImage).CombinedOutput(); err != nil {
			t.Fatalf("pull %s: %v\n%s", grpcImage, err, out)
		}
	}
	c.waitForSubnets(2)
	repo.Commit("grpc and a preStop hook", map[string]string{
		"grpc.yaml": strings.Replace(testsupport.Deployment{Name: "grpc", Replicas: 1, Image: grpcImage, GracePeriod: 2,
			ContainerYAML: `        env:
        - {name: SERVING_AFTER, value: 3s}
        - {name: SERVICE, value: cart}
        readinessProbe:
          grpc: {port: 50051, service: cart}
          periodSeconds: 1
        lifecycle:
          preStop:
            httpGet: {port: 9, path: /drain}
`}.YAML(), "      terminationGracePeriodSeconds: 2\n", "      terminationGracePeriodSeconds: 2\n      nodeSelector: {kubernetes.io/hostname: node1}\n", 1),
	})
	a.webhook()
	a.waitFor("the gRPC instance running, not ready", func(st *agent.Status) bool {
		w := workload(st, "grpc")
		return w != nil && len(w.Instances) == 1 && w.Instances[0].Phase == agent.PhaseRunning
	})
	st := a.waitFor("the gRPC instance ready once SERVING", func(st *agent.Status) bool {
		w := workload(st, "grpc")
		return w != nil && len(w.Instances) == 1 && w.Instances[0].Phase == agent.PhaseReady
	})
	addr := workload(st, "grpc").Instances[0].Addr
	if !strings.HasPrefix(addr, "10.244.") {
		t.Fatalf("the instance's address is %q, want one of the pod network", addr)
	}
	repo.Commit("delete", map[string]string{"grpc.yaml": ""})
	a.webhook()
	want := fmt.Sprintf("%s:9", addr)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		log := a.log.String()
		if strings.Contains(log, "preStop hook failed") && strings.Contains(log, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no preStop failure naming %s in the agent's log", want)
		}
	}
}
