package main

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/agent"
	"github.com/shoalhq/shoal/internal/testpki"
)

// tokenAgent serves /status only to requests that carry token, or a verified client
// certificate, as the agent does.
func tokenAgent(token string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(agent.Status{Node: "n1"})
	})
}

func writeTokenFile(t *testing.T, token string) string {
	path := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIFindsTheToken(t *testing.T) {
	const token = "cli-test-token-0123456789"
	defer func(saved string) { defaultTokenFile = saved }(defaultTokenFile)
	defaultTokenFile = filepath.Join(t.TempDir(), "api-token")
	srv := httptest.NewServer(tokenAgent(token))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	file := writeTokenFile(t, token)
	const localAgent = "(token in the default file)" // an env entry that writes defaultTokenFile instead
	wrong := writeTokenFile(t, "not-the-token-0123456789")

	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"--token-file", []string{"--token-file", file}, nil, 0, ""},
		{"$SHOAL_TOKEN", nil, map[string]string{"SHOAL_TOKEN": token}, 0, ""},
		{"$SHOAL_TOKEN_FILE", nil, map[string]string{"SHOAL_TOKEN_FILE": file}, 0, ""},
		{"flag wins over environment", []string{"--token-file", file}, map[string]string{"SHOAL_TOKEN": "nope-nope-nope-nope"}, 0, ""},
		{"no token", nil, nil, exitTrouble, "--token-file, $SHOAL_TOKEN or $SHOAL_TOKEN_FILE"},
		{"the local agent's file", nil, map[string]string{localAgent: token}, 0, ""},
		{"wrong token", []string{"--token-file", wrong}, nil, exitTrouble, "refused the token"},
		{"missing file", []string{"--token-file", file + ".missing"}, nil, exitTrouble, "--token-file: API token: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SHOAL_TOKEN", "")
			t.Setenv("SHOAL_TOKEN_FILE", "")
			for k, v := range tc.env {
				if k == localAgent {
					os.WriteFile(defaultTokenFile, []byte(v+"\n"), 0o600)
					defer os.Remove(defaultTokenFile)
					continue
				}
				t.Setenv(k, v)
			}
			code, out, errOut := shoal(t, append([]string{"status", "--addr", addr}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.wantCode, tc.wantErr)
			}
			if code == 0 && !strings.Contains(out, "node:      n1") {
				t.Errorf("stdout %q", out)
			}
		})
	}
}

// The agent's TLS flags and the CLI's meet: HTTPS verified with --ca-cert, and a client
// certificate in place of the token.
func TestCLIOverTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	server := ca.Issue(t, "node-a", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth) // as shoal ca issue makes them
	client := ca.Issue(t, "operator", x509.ExtKeyUsageClientAuth)
	other := testpki.NewCA(t, "other")

	flags := apiServerFlags{tokenFile: filepath.Join(t.TempDir(), "api-token"), tlsCert: server.CertFile, tlsKey: server.KeyFile, clientCA: ca.File}
	cfg, tlsCfg, err := flags.config("", "0.0.0.0:7070", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(tokenAgent(cfg.Token))
	srv.TLS = tlsCfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are logged: expected
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	t.Setenv("SHOAL_TOKEN", "")
	t.Setenv("SHOAL_TOKEN_FILE", "")

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"CA and token", []string{"--addr", addr, "--ca-cert", ca.File, "--token-file", flags.tokenFile}, ""},
		{"https:// address", []string{"--addr", "https://" + addr, "--ca-cert", ca.File, "--token-file", flags.tokenFile}, ""},
		{"client certificate, no token", []string{"--addr", addr, "--ca-cert", ca.File, "--client-cert", client.CertFile, "--client-key", client.KeyFile}, ""},
		{"neither", []string{"--addr", addr, "--ca-cert", ca.File}, "401"},
		{"untrusted server", []string{"--addr", addr, "--ca-cert", other.File, "--token-file", flags.tokenFile}, "certificate signed by unknown authority"},
		{"plain HTTP to a TLS port", []string{"--addr", addr, "--token-file", flags.tokenFile}, "400"},
		{"key without certificate", []string{"--addr", addr, "--client-key", client.KeyFile}, "--client-cert and --client-key go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := shoal(t, append([]string{"status"}, tc.args...)...)
			if tc.wantErr == "" && (code != 0 || !strings.Contains(out, "n1")) {
				t.Errorf("exit %d, stderr %q; want success", code, errOut)
			}
			if tc.wantErr != "" && (code == 0 || !strings.Contains(errOut, tc.wantErr)) {
				t.Errorf("exit %d, stderr %q; want an error with %q", code, errOut, tc.wantErr)
			}
		})
	}
}

func TestAgentAPIFlags(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	node := ca.Issue(t, "node-a", x509.ExtKeyUsageServerAuth)
	cert, key := node.CertFile, node.KeyFile
	otherKey := ca.Issue(t, "node-b", x509.ExtKeyUsageServerAuth).KeyFile
	for _, tc := range []struct {
		name    string
		flags   apiServerFlags
		listen  string
		wantErr string
		wantLog string
	}{
		{"loopback, plain", apiServerFlags{}, "127.0.0.1:7070", "", ""},
		{"everywhere, plain: warned", apiServerFlags{}, "0.0.0.0:7070", "", "without TLS"},
		{"everywhere, TLS", apiServerFlags{tlsCert: cert, tlsKey: key}, ":7070", "", ""},
		{"cert without key", apiServerFlags{tlsCert: cert}, ":7070", "go together", ""},
		{"client CA without TLS", apiServerFlags{clientCA: ca.File}, ":7070", "needs --api-tls-cert", ""},
		{"key of another certificate", apiServerFlags{tlsCert: cert, tlsKey: otherKey}, ":7070", "private key does not match", ""},
		{"client CA not PEM", apiServerFlags{tlsCert: cert, tlsKey: key, clientCA: key}, ":7070", "no PEM certificate", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			tc.flags.tokenFile = filepath.Join(t.TempDir(), "api-token")
			cfg, _, err := tc.flags.config("", tc.listen, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.Token == "" {
				t.Fatalf("config: %v, token %q", err, cfg.Token)
			}
			if got := strings.Contains(logs.String(), "level=WARN"); got != (tc.wantLog != "") || !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("logs %q, want warning %q", logs.String(), tc.wantLog)
			}
		})
	}
}
