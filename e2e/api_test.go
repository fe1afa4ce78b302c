package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/internal/testpki"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// TestAPIOverTLS runs a real agent whose API serves HTTPS with a certificate like the
// node certificates of `shoal ca issue` (Ed25519, serverAuth and clientAuth) and takes
// operators' client certificates: the CLI verifies the agent with --ca-cert, and gets in
// with the token or with a client certificate, and with neither it does not.
func TestAPIOverTLS(t *testing.T) {
	repo := testsupport.NewRepo(t)
	repo.Commit("empty", map[string]string{"README": "nothing to run"})
	ca := testpki.NewCA(t, "cluster CA")
	node := ca.Issue(t, "e2e-node", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	operators := testpki.NewCA(t, "operators")
	me := operators.Issue(t, "me", x509.ExtKeyUsageClientAuth)
	a := startAgent(t, repo, "e2e-api-tls", func(a *agentProc) {
		a.caFile = ca.File
		a.args = append(a.args, "--api-tls-cert", node.CertFile, "--api-tls-key", node.KeyFile, "--api-client-ca", operators.File)
	})

	if out, err := a.cli("status").CombinedOutput(); err != nil || !strings.Contains(string(out), "node:      e2e-node") {
		t.Errorf("shoal status over HTTPS with the token: %v\n%s", err, out)
	}
	withCert := a.cli("status", "--client-cert", me.CertFile, "--client-key", me.KeyFile)
	withCert.Env = append(withCert.Env, "SHOAL_TOKEN=", "SHOAL_TOKEN_FILE=")
	if out, err := withCert.CombinedOutput(); err != nil || !strings.Contains(string(out), "node:      e2e-node") {
		t.Errorf("shoal status with a client certificate and no token: %v\n%s", err, out)
	}
	neither := a.cli("status")
	neither.Env = append(neither.Env, "SHOAL_TOKEN=", "SHOAL_TOKEN_FILE=")
	if out, err := neither.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("shoal status with neither token nor certificate: %v\n%s, want 401", err, out)
	}
	// Plain HTTP to the TLS port gets nowhere; nor does a client that trusts another CA.
	if resp, err := http.Get("http://" + a.addr + "/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the HTTPS API: %d, want 400", resp.StatusCode)
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: operators.Pool()}}}
	if _, err := client.Get("https://" + a.addr + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v, want a certificate error", err)
	}
}
