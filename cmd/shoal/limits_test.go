package main

import (
	"strings"
	"testing"
)

var billionReplicas = deployment("nginx:1.25", 1_000_000_000)

// TestValidateRejectsBillionReplicas is issue #8's attack through `shoal validate`: it
// used to pass, and the same commit then took every agent down.
func TestValidateRejectsBillionReplicas(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", billionReplicas)
	code, out, _ := shoal(t, "validate", dir)
	want := "web.yaml:6: spec.replicas: 1000000000 replicas is over the limit of 10,000 per Deployment (max-replicas-per-deployment)"
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit %d, output %q: want 1 and %q", code, out, want)
	}
}

// TestValidateLimitFlags: validate takes the agent's limit flags, so that it refuses what
// an agent with the same flags would.
func TestValidateLimitFlags(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "web.yaml", strings.Replace(billionReplicas, "1000000000", "6", 1))
	if code, out, _ := shoal(t, "validate", dir); code != 0 {
		t.Fatalf("6 replicas under the default limits: exit %d, %s", code, out)
	}
	code, out, _ := shoal(t, "validate", "--max-replicas-per-deployment", "5", dir)
	if code != 1 || !strings.Contains(out, "over the limit of 5 per Deployment (max-replicas-per-deployment)") {
		t.Errorf("--max-replicas-per-deployment 5: exit %d, output %q", code, out)
	}
	code, out, _ = shoal(t, "validate", "--max-replicas-per-revision", "5", dir)
	if code != 1 || !strings.Contains(out, "more than 5 replicas in all Deployments (max-replicas-per-revision)") {
		t.Errorf("--max-replicas-per-revision 5: exit %d, output %q", code, out)
	}
}
