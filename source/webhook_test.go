package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countingTrigger struct{ n atomic.Int32 }

func (c *countingTrigger) Trigger() { c.n.Add(1) }

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestWebhook(t *testing.T) {
	const secret = "hunter2-but-longer"
	const body = `{"ref":"refs/heads/main"}`
	big := strings.Repeat("x", MaxWebhookBody+1)
	atLimit := strings.Repeat("x", MaxWebhookBody)

	for _, tc := range []struct {
		name    string
		method  string
		header  map[string]string
		body    string
		want    int
		trigger bool
	}{
		{"github", "POST", map[string]string{HeaderGitHub: sign(secret, body)}, body, 202, true},
		{"github wrong secret", "POST", map[string]string{HeaderGitHub: sign("other", body)}, body, 401, false},
		{"github other body", "POST", map[string]string{HeaderGitHub: sign(secret, body)}, body + " ", 401, false},
		{"github no prefix", "POST", map[string]string{HeaderGitHub: strings.TrimPrefix(sign(secret, body), "sha256=")}, body, 401, false},
		{"github not hex", "POST", map[string]string{HeaderGitHub: "sha256=zz"}, body, 401, false},
		{"gitlab", "POST", map[string]string{HeaderGitLab: secret}, body, 202, true},
		{"gitlab wrong token", "POST", map[string]string{HeaderGitLab: secret + "x"}, body, 401, false},
		{"shoal", "POST", map[string]string{HeaderShoal: sign(secret, body)}, body, 202, true},
		{"shoal wrong secret", "POST", map[string]string{HeaderShoal: sign("other", body)}, body, 401, false},
		{"empty body signed", "POST", map[string]string{HeaderShoal: sign(secret, "")}, "", 202, true},
		// The first header present decides: a good GitLab token does not rescue a bad GitHub signature.
		{"bad github with good gitlab", "POST", map[string]string{HeaderGitHub: sign("other", body), HeaderGitLab: secret}, body, 401, false},
		{"unsigned", "POST", nil, body, 401, false},
		{"body at the limit", "POST", map[string]string{HeaderGitHub: sign(secret, atLimit)}, atLimit, 202, true},
		{"body over the limit", "POST", map[string]string{HeaderGitHub: sign(secret, big)}, big, 413, false},
		{"GET", "GET", map[string]string{HeaderGitLab: secret}, "", 405, false},
		{"PUT", "PUT", map[string]string{HeaderGitHub: sign(secret, body)}, body, 405, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var trig countingTrigger
			logger, logs := logBuffer()
			h, err := NewWebhook([]byte(secret), &trig, logger)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tc.method, "/hook", strings.NewReader(tc.body))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			if got := trig.n.Load() == 1; got != tc.trigger {
				t.Errorf("triggered %d times, want trigger=%v", trig.n.Load(), tc.trigger)
			}
			if tc.want == 401 && !strings.Contains(logs.String(), "webhook refused") {
				t.Errorf("refusal not logged: %q", logs)
			}
			if tc.want == 405 && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", rec.Header().Get("Allow"))
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log leaks the secret: %q", logs)
			}
		})
	}
}

func TestWebhookNeedsSecret(t *testing.T) {
	if _, err := NewWebhook(nil, &countingTrigger{}, nil); !errors.Is(err, ErrNoSecret) {
		t.Errorf("NewWebhook without secret: %v, want ErrNoSecret", err)
	}
	if _, err := NewWebhook([]byte("s"), nil, nil); err == nil {
		t.Error("NewWebhook without a target accepted")
	}
}

// A signed push delivered over HTTP makes a real Poller look at once.
func TestWebhookTriggersPoller(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	cfg := testPollerConfig()
	cfg.Interval = 24 * time.Hour // only the webhook can cause the second check
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), cfg)
	receive(t, p)

	h, err := NewWebhook([]byte("s3cret"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})

	body := `{"ref":"refs/heads/main"}`
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
	req.Header.Set(HeaderGitHub, sign("s3cret", body))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	if ev := receive(t, p); ev.Revision.Commit != c2 {
		t.Fatalf("after webhook: %+v, want %s", ev.Revision, c2)
	}
}

// The attack: the same delivery sent again (a redelivery, or a captured request replayed
// as it was) makes the agent check the remote again. Now a delivery ID seen before is
// ignored, counted and logged.
func TestWebhookIgnoresRepeatedDelivery(t *testing.T) {
	const secret = "s3cret"
	body := `{"ref":"refs/heads/main"}`
	var trig countingTrigger
	logger, logs := logBuffer()
	h, err := NewWebhook([]byte(secret), &trig, logger)
	if err != nil {
		t.Fatal(err)
	}
	post := func(header map[string]string) int {
		req := httptest.NewRequest("POST", "/webhook", strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	signed := func(id string) map[string]string {
		return map[string]string{HeaderGitHub: sign(secret, body), HeaderGitHubDelivery: id}
	}

	if code := post(signed("d-1")); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d, want 202", code)
	}
	if code := post(signed("d-1")); code != http.StatusOK {
		t.Errorf("the same delivery again: %d, want 200 (ignored)", code)
	}
	if n := trig.n.Load(); n != 1 {
		t.Errorf("triggered %d times by one delivery sent twice, want 1", n)
	}
	if !strings.Contains(logs.String(), "seen before") || !strings.Contains(logs.String(), "d-1") {
		t.Errorf("the repeat is not logged: %q", logs)
	}
	if st := h.Stats(); st != (WebhookStats{Accepted: 1, Repeated: 1}) {
		t.Errorf("stats %+v, want 1 accepted, 1 repeated", st)
	}

	// Other hosts' headers name deliveries too; no ID at all cannot be deduplicated.
	for _, header := range []map[string]string{
		{HeaderGitLab: secret, HeaderIdempotencyKey: "gl-1"},
		{HeaderShoal: sign(secret, body), HeaderGiteaDelivery: "gt-1"},
	} {
		post(header)
		if code := post(header); code != http.StatusOK {
			t.Errorf("repeat with %v: %d, want 200", header, code)
		}
	}
	before := trig.n.Load()
	post(map[string]string{HeaderShoal: sign(secret, body)})
	post(map[string]string{HeaderShoal: sign(secret, body)})
	if n := trig.n.Load() - before; n != 2 {
		t.Errorf("two deliveries without an ID triggered %d checks, want 2", n)
	}

	// An unsigned request cannot mark an ID as seen ahead of the real delivery.
	if code := post(map[string]string{HeaderGitHubDelivery: "d-2"}); code != http.StatusUnauthorized {
		t.Errorf("unsigned: %d, want 401", code)
	}
	if code := post(signed("d-2")); code != http.StatusAccepted {
		t.Errorf("real delivery after an unsigned one with its ID: %d, want 202", code)
	}
}

// The memory of IDs is bounded: the oldest is forgotten once RecentDeliveries newer ones came.
func TestRecentIDsForgetsTheOldest(t *testing.T) {
	r := newRecentIDs(3)
	for _, id := range []string{"a", "b", "c"} {
		if !r.add(id) {
			t.Fatalf("%s: not new", id)
		}
	}
	if r.add("a") {
		t.Error("a is new again while remembered")
	}
	r.add("d") // forgets a
	if !r.add("a") || r.add("c") {
		t.Errorf("after d: a should be forgotten (new), c remembered; set has %d", len(r.set))
	}
	if len(r.set) != 3 || len(r.order) != 3 {
		t.Errorf("holds %d IDs (%d in order), want 3", len(r.set), len(r.order))
	}
}

// A burst of deliveries while a check is running costs at most two checks (ls-remote):
// the one running and one more, not one each.
func TestWebhookBurstCoalesces(t *testing.T) {
	if testing.Short() {
		t.Skip("serves a real repository with git http-backend")
	}
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Fatalf("needs %s from the git package: %v", gitHTTPBackend, err)
	}
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	backend := &cgi.Handler{Path: gitHTTPBackend,
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(up.Bare), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1"}}
	var adverts, fetches atomic.Int32 // ref advertisements (every check, and every fetch), and fetches
	gate := make(chan struct{})
	close(gate) // open until the burst
	var gateMu sync.Mutex
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/info/refs") {
			adverts.Add(1)
			gateMu.Lock()
			g := gate
			gateMu.Unlock()
			<-g
		} else if strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			fetches.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	defer remote.Close()

	cfg := testPollerConfig()
	cfg.Interval = 24 * time.Hour // only the webhook causes checks
	p := startPoller(t, openRepo(t, Source{URL: remote.URL + "/" + filepath.Base(up.Bare)}, t.TempDir()), cfg)
	receive(t, p)
	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	h, err := NewWebhook([]byte("s3cret"), p, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(h)
	defer hook.Close()

	gateMu.Lock()
	gate = make(chan struct{}) // hold every check at the remote until the burst is over
	gateMu.Unlock()
	adverts.Store(0)
	fetches.Store(0)
	body := `{"ref":"refs/heads/main"}`
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", hook.URL, strings.NewReader(body))
			req.Header.Set(HeaderGitHub, sign("s3cret", body))
			req.Header.Set(HeaderGitHubDelivery, fmt.Sprintf("burst-%d", i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("delivery %d: %d, want 202", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(gate)
	if ev := receive(t, p); ev.Revision.Commit != c2 {
		t.Fatalf("after the burst: %+v, want %s", ev.Revision, c2)
	}
	// The pending check, if any, runs now and finds nothing new; give it time to show.
	time.Sleep(500 * time.Millisecond)
	checks := adverts.Load() - fetches.Load() // a fetch advertises refs once more
	t.Logf("100 deliveries: %d checks, %d fetches", checks, fetches.Load())
	if checks < 1 || checks > 2 || fetches.Load() != 1 {
		t.Errorf("100 deliveries caused %d checks and %d fetches, want 1 or 2 checks and 1 fetch", checks, fetches.Load())
	}
}
