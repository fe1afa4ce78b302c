package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/internal/testpki"
	"github.com/shoalhq/shoal/source"
)

const (
	testToken  = "test-token-0123456789abcdef"
	leakedWord = "hunter2-db-password"
)

// secretApp is a Deployment whose container prints a Secret's value at start, as real
// programs do by accident ("connecting with password=...").
var secretApp = map[string]string{
	"secret.yaml": `apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: ` + leakedWord + `}
`,
	"app.yaml": deployment("app", "hello:v1", 1, `        env:
        - name: VERSION
          valueFrom: {secretKeyRef: {name: db, key: password}}
        - {name: LOG_EVERY, value: 20ms}
`),
}

// apiServer serves h's agent API over HTTP on loopback with cfg.
func apiServer(t *testing.T, h *harness, cfg APIConfig) *httptest.Server {
	srv := httptest.NewServer(h.agent.Handler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

func testAPIConfig() APIConfig {
	cfg := DefaultAPIConfig()
	cfg.Token = testToken
	return cfg
}

func get(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The attack: a container on the node's network asked GET 127.0.0.1:7070/logs for another
// workload's logs and read its Secret. Now every endpoint that tells anything about the
// workloads wants the token; only the probes stay open.
func TestAPIRefusesRequestsWithoutToken(t *testing.T) {
	h := newHarness(t, nil)
	h.push(secretApp)
	h.waitFor("app ready", readyWith("app", 1, "hello:v1"))
	srv := apiServer(t, h, testAPIConfig())

	for _, path := range []string{"/logs?workload=app", "/status", "/metrics", "/view", "/explain?workload=app", "/nowhere"} {
		for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + testToken, "Bearer", testToken} {
			code, body := get(t, srv.URL+path, auth)
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %d, want 401", path, auth, code)
			}
			if strings.Contains(body, leakedWord) {
				t.Errorf("GET %s with Authorization %q leaks the Secret: %q", path, auth, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, srv.URL+path, ""); code != http.StatusOK {
			t.Errorf("GET %s without token: %d, want 200 (probes stay open)", path, code)
		}
	}
	// With the token the same request works (and shows what was at stake).
	code, body := get(t, srv.URL+"/logs?workload=app&tail=5", "Bearer "+testToken)
	if code != http.StatusOK || !strings.Contains(body, leakedWord) {
		t.Errorf("GET /logs with the token: %d %q, want 200 with the app's log", code, body)
	}
	if code, _ := get(t, srv.URL+"/status", "bearer "+testToken); code != http.StatusOK {
		t.Errorf("GET /status with the token (lower-case scheme): %d, want 200", code)
	}
}

// An agent with no token configured lets nobody in rather than everybody.
func TestAPIWithoutTokenFailsClosed(t *testing.T) {
	h := newHarness(t, nil)
	srv := apiServer(t, h, DefaultAPIConfig())
	for _, auth := range []string{"", "Bearer ", "Bearer  "} {
		if code, _ := get(t, srv.URL+"/status", auth); code != http.StatusUnauthorized {
			t.Errorf("GET /status, no token configured, Authorization %q: %d, want 401", auth, code)
		}
	}
}

type noTrigger struct{}

func (noTrigger) Trigger() {}

// The webhook has its own signature and no bearer token (Git hosts cannot send one); its
// counts show in /metrics.
func TestAPIWebhookKeepsItsOwnAuth(t *testing.T) {
	h := newHarness(t, nil)
	cfg := testAPIConfig()
	wh, err := source.NewWebhook([]byte("s3cret"), noTrigger{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Webhook = wh
	srv := apiServer(t, h, cfg)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhook", strings.NewReader("{}"))
	req.Header.Set(source.HeaderGitLab, "s3cret")
	for _, want := range []int{http.StatusAccepted, http.StatusUnauthorized} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST /webhook without bearer token: %d, want %d from the webhook itself", resp.StatusCode, want)
		}
		req, _ = http.NewRequest(http.MethodPost, srv.URL+"/webhook", strings.NewReader("{}"))
	}
	_, metrics := get(t, srv.URL+"/metrics", "Bearer "+testToken)
	for _, line := range []string{`shoal_webhook_requests_total{result="accepted"} 1`, `shoal_webhook_requests_total{result="refused"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// A client whose certificate the handshake verified against the client CA needs no token.
func TestAPIClientCertificate(t *testing.T) {
	h := newHarness(t, nil)
	ca := testpki.NewCA(t, "shoal test CA")
	other := testpki.NewCA(t, "someone else")
	srv := httptest.NewUnstartedServer(h.agent.Handler(testAPIConfig()))
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.Pool()}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is logged: expected
	srv.StartTLS()
	defer srv.Close()

	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"certificate from the client CA", &ca.Issue(t, "node-b", x509.ExtKeyUsageClientAuth).TLS, http.StatusOK},
		{"no certificate, no token", nil, http.StatusUnauthorized},
		{"server-only certificate", &ca.Issue(t, "web", x509.ExtKeyUsageServerAuth).TLS, 0},
		// Go's client offers only a certificate the server's CA list accepts, so this
		// arrives as no certificate at all.
		{"certificate from another CA", &other.Issue(t, "node-b", x509.ExtKeyUsageClientAuth).TLS, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			if tc.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{*tc.cert}
			}
			client := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			resp, err := client.Get(srv.URL + "/status")
			if tc.want == 0 { // the handshake itself must fail
				if err == nil {
					resp.Body.Close()
					t.Fatalf("GET /status: %d, want a failed handshake", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /status: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// One client cannot hold more follow streams than its share, nor all clients more than
// the agent's; a slot comes back when its stream ends.
func TestLogsFollowStreamLimit(t *testing.T) {
	h := newHarness(t, nil)
	h.push(secretApp)
	h.waitFor("app ready", readyWith("app", 1, "hello:v1"))
	cfg := testAPIConfig()
	cfg.MaxFollowStreams, cfg.MaxFollowStreamsPerClient = 3, 2
	srv := apiServer(t, h, cfg)

	follow := func() (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/logs?workload=app&follow=1&tail=1", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, func() { cancel(); resp.Body.Close() }
	}
	r1, stop1 := follow()
	r2, stop2 := follow()
	defer stop2()
	for _, r := range []*http.Response{r1, r2} {
		if r.StatusCode != http.StatusOK {
			t.Fatalf("follow stream: %d, want 200", r.StatusCode)
		}
	}
	r3, stop3 := follow()
	if r3.StatusCode != http.StatusTooManyRequests || r3.Header.Get("Retry-After") == "" {
		t.Errorf("third stream from one client: %d, want 429 with Retry-After", r3.StatusCode)
	}
	stop3()
	// Non-follow requests are not streams and are not counted.
	if code, _ := get(t, srv.URL+"/logs?workload=app&tail=1", "Bearer "+testToken); code != http.StatusOK {
		t.Errorf("plain /logs while two streams are open: %d, want 200", code)
	}
	stop1()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, stop := follow()
		stop()
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed stream never came back: %d", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamLimiter(t *testing.T) {
	l := newStreamLimiter(3, 2)
	var releases []func()
	for _, client := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
		release, err := l.acquire(client)
		if err != nil {
			t.Fatalf("acquire %s: %v", client, err)
		}
		releases = append(releases, release)
	}
	if _, err := l.acquire("10.0.0.3"); err == nil || !strings.Contains(err.Error(), "on this agent") {
		t.Errorf("fourth stream: %v, want the agent's limit", err)
	}
	releases[2]()
	if _, err := l.acquire("10.0.0.1"); err == nil || !strings.Contains(err.Error(), "from 10.0.0.1") {
		t.Errorf("third stream of 10.0.0.1: %v, want the per-client limit", err)
	}
	releases[0]()
	releases[1]()
	if len(l.perClient) != 0 || l.open != 0 {
		t.Errorf("after every release: open %d, per client %v", l.open, l.perClient)
	}
}

// A follow stream lives past the server's read and write timeouts, as long as the client
// reads.
func TestLogsFollowOutlivesServerTimeouts(t *testing.T) {
	h := newHarness(t, nil)
	h.push(secretApp)
	h.waitFor("app ready", readyWith("app", 1, "hello:v1"))
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewAPIServer(h.agent.Handler(testAPIConfig()), nil)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	srv.Start()
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/logs?workload=app&follow=1&tail=1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	start := time.Now()
	for n := 0; time.Since(start) < 5*srv.Config.WriteTimeout; n++ {
		if !lines.Scan() {
			t.Fatalf("stream ended after %v and %d lines: %v", time.Since(start), n, lines.Err())
		}
	}
}

func TestLoadOrCreateAPIToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "api-token")
	token, created, err := LoadOrCreateAPIToken(path)
	if err != nil || !created || len(token) < 40 {
		t.Fatalf("first start: %q created=%v %v, want a new long token", token, created, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", info.Mode().Perm())
	}
	again, created, err := LoadOrCreateAPIToken(path)
	if err != nil || created || again != token {
		t.Errorf("second start: %q created=%v %v, want the same token", again, created, err)
	}
	if read, err := ReadAPIToken(path); err != nil || read != token {
		t.Errorf("ReadAPIToken: %q %v", read, err)
	}
	os.Chmod(path, 0o640) // a group of operators may read it
	if _, _, err := LoadOrCreateAPIToken(path); err != nil {
		t.Errorf("mode 0640: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateAPIToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable token file: %v, want a refusal naming chmod", err)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	if _, _, err := LoadOrCreateAPIToken(short); err == nil || !strings.Contains(err.Error(), short+": line 1") {
		t.Errorf("short token: %v, want an error naming the file and line", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("left temporary files: %v", entries)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:7070": true, "localhost:7070": true, "127.0.0.2:1": true,
		"0.0.0.0:7070": false, ":7070": false, "[::]:7070": false, "10.0.0.1:7070": false, "node1:7070": false, "junk": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
