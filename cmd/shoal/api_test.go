package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/agent"
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
	dir := t.TempDir()
	ca := newPEMCA(t, dir, "ca")
	serverCert, serverKey := ca.issue(t, dir, "node-a", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	clientCert, clientKey := ca.issue(t, dir, "operator", x509.ExtKeyUsageClientAuth)
	other := newPEMCA(t, dir, "other")

	flags := apiServerFlags{tokenFile: filepath.Join(dir, "api-token"), tlsCert: serverCert, tlsKey: serverKey, clientCA: ca.file}
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
		{"CA and token", []string{"--addr", addr, "--ca-cert", ca.file, "--token-file", flags.tokenFile}, ""},
		{"https:// address", []string{"--addr", "https://" + addr, "--ca-cert", ca.file, "--token-file", flags.tokenFile}, ""},
		{"client certificate, no token", []string{"--addr", addr, "--ca-cert", ca.file, "--client-cert", clientCert, "--client-key", clientKey}, ""},
		{"neither", []string{"--addr", addr, "--ca-cert", ca.file}, "401"},
		{"untrusted server", []string{"--addr", addr, "--ca-cert", other.file, "--token-file", flags.tokenFile}, "certificate signed by unknown authority"},
		{"plain HTTP to a TLS port", []string{"--addr", addr, "--token-file", flags.tokenFile}, "400"},
		{"key without certificate", []string{"--addr", addr, "--client-key", clientKey}, "--client-cert and --client-key go together"},
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
	dir := t.TempDir()
	ca := newPEMCA(t, dir, "ca")
	cert, key := ca.issue(t, dir, "node-a", x509.ExtKeyUsageServerAuth)
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
		{"client CA without TLS", apiServerFlags{clientCA: ca.file}, ":7070", "needs --api-tls-cert", ""},
		{"key of another certificate", apiServerFlags{tlsCert: cert, tlsKey: ca.keyFile}, ":7070", "private key does not match", ""},
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

// pemCA is a certificate authority whose certificate and key are PEM files. Its keys are
// Ed25519, as those of `shoal ca` are.
type pemCA struct {
	cert          *x509.Certificate
	key           ed25519.PrivateKey
	file, keyFile string
}

func newPEMCA(t *testing.T, dir, name string) *pemCA {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &pemCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem"), keyFile: filepath.Join(dir, name+"-key.pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	writePEM(t, ca.keyFile, "PRIVATE KEY", marshalKey(t, key))
	return ca
}

// issue writes a certificate for name (valid for 127.0.0.1) and its key; it returns their paths.
func (ca *pemCA) issue(t *testing.T, dir, name string, usage ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", marshalKey(t, key))
	return certFile, keyFile
}

func marshalKey(t *testing.T, key ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
