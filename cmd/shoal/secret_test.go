package main

import (
	"strings"
	"testing"

	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestValidateAndPlanNeverPrintSecrets is the leak through the CLI: a Secret rejected for
// a value of the wrong type, and a Secret whose last-applied-configuration annotation
// (which kubectl apply fills with the whole object) changes. Neither validate nor plan
// prints the values.
func TestValidateAndPlanNeverPrintSecrets(t *testing.T) {
	withToken := func(token string) string {
		return `apiVersion: v1
kind: Secret
metadata:
  name: api
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","kind":"Secret","metadata":{"name":"api"},"stringData":{"token":"` + token + `"}}
stringData:
  token: ` + token + "\n"
	}
	repo := testsupport.NewRepo(t)
	first := repo.Commit("change", map[string]string{"api.yaml": withToken("tok-old-5551234")})
	repo.Commit("change", map[string]string{"api.yaml": withToken("tok-new-5556789")})
	cache := t.TempDir()

	code, out, errOut := shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", "main", "--state-dir", cache)
	if code != 1 || !strings.Contains(out, "last-applied-configuration") {
		t.Fatalf("plan: exit %d, want 1 and the annotation named:\n%s%s", code, out, errOut)
	}
	for _, token := range []string{"tok-old-5551234", "tok-new-5556789"} {
		if strings.Contains(out+errOut, token) {
			t.Errorf("plan prints the token %q:\n%s%s", token, out, errOut)
		}
	}

	repo.Commit("change", map[string]string{"api.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: api}\nstringData:\n  pin: 8675309\n"})
	code, out, errOut = shoal(t, "validate", "--repo", repo.Dir, "--state-dir", cache)
	if code != 1 || !strings.Contains(out, "api.yaml:5: stringData.pin") {
		t.Errorf("validate: exit %d, want 1 with the file, line and field:\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "8675309") {
		t.Errorf("validate prints the rejected value:\n%s%s", out, errOut)
	}
	code, out, errOut = shoal(t, "plan", "--repo", repo.Dir, "--from", first, "--to", "main", "--state-dir", cache)
	if code != 2 || strings.Contains(out+errOut, "8675309") {
		t.Errorf("plan to the broken revision: exit %d, want 2 without the value:\n%s%s", code, out, errOut)
	}
}
