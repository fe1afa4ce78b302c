package sync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
	up.commit(map[string]string{"app.yaml": configMap("app", "v1")}, "one")
	cfg := testPollerConfig()
	cfg.Interval = 24 * time.Hour // only the webhook can cause the second check
	p := startPoller(t, openRepo(t, Source{URL: up.bare}, t.TempDir()), cfg)
	receive(t, p)

	h, err := NewWebhook([]byte("s3cret"), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c2 := up.commit(map[string]string{"app.yaml": configMap("app", "v2")}, "two")

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
