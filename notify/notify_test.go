package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sha         = "0123456789abcdef0123456789abcdef01234567"
	ghToken     = "ghp_TESTTOKEN0123456789abcdefghijklmnopq"
	glToken     = "glpat-TESTTOKEN0123456789ab"
	hookSecret  = "whsec-TESTSECRET0123456789"
	fixedTimeIn = "2026-12-02T14:00:00Z"
)

var fixedTime, _ = time.Parse(time.RFC3339, fixedTimeIn)

// clock replaces the Notifier's sleeping: it records each wait and, after limit waits,
// ends the context as a person stopping the agent would.
type clock struct {
	mu     sync.Mutex
	waits  []time.Duration
	limit  int
	cancel context.CancelFunc
}

func (c *clock) wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if c.limit > 0 && len(c.waits) >= c.limit {
		c.cancel()
	}
	return ctx.Err()
}

func (c *clock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// testNotifier is New(cfg) with time replaced: no jitter, waits recorded, and the
// returned context ended after limit waits (0: 50, so a test that expects no retries
// fails rather than hangs when there are some).
func testNotifier(t *testing.T, cfg Config, limit int) (*Notifier, *clock, context.Context) {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if limit == 0 {
		limit = 50
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &clock{limit: limit, cancel: cancel}
	n.wait, n.jitter = c.wait, func(d time.Duration) time.Duration { return d }
	n.now = func() time.Time { return fixedTime }
	return n, c, ctx
}

func report(state State) Report {
	return Report{Commit: sha, State: state, Description: "rolled out to 3 nodes", Node: "node-a", Time: fixedTime}
}

// assertNoSecrets fails when err's text holds any test credential.
func assertNoSecrets(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{ghToken, glToken, hookSecret, "SECRETPATH"} {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func TestGitHubStatuses(t *testing.T) {
	fake, srv := newFakeGitHub(t, "acme/deploy", ghToken)
	n, c, ctx := testNotifier(t, Config{GitHubRepo: "acme/deploy", GitHubAPI: srv.URL, GitHubToken: ghToken,
		LinkURL: "https://shoal.example/commits/{commit}"}, 0)
	for _, tc := range []struct {
		state     State
		want      string
		descHas   string
		errorsArg []string
	}{
		{Pending, "pending", "rolled out to 3 nodes", nil},
		{Success, "success", "rolled out to 3 nodes", nil},
		{Failure, "failure", "rolled out to 3 nodes: apps/web.yaml:12: unknown field", []string{"apps/web.yaml:12: unknown field", "b.yaml:1: x"}},
		{Superseded, "error", "superseded: rolled out to 3 nodes", nil},
	} {
		r := report(tc.state)
		r.Errors = tc.errorsArg
		if err := n.Send(ctx, r); err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		got := fake.requests()
		last := got[len(got)-1]
		if last["state"] != tc.want || last["description"] != tc.descHas || last["context"] != "shoal" ||
			last["target_url"] != "https://shoal.example/commits/"+sha {
			t.Errorf("%s: GitHub got %v", tc.state, last)
		}
	}
	if len(fake.requests()) != 4 || len(c.recorded()) != 0 {
		t.Errorf("%d requests, waits %v: want 4 and none", len(fake.requests()), c.recorded())
	}
}

func TestGitHubNoLinkAndDefaultDescription(t *testing.T) {
	fake, srv := newFakeGitHub(t, "acme/deploy", ghToken)
	n, _, ctx := testNotifier(t, Config{GitHubRepo: "acme/deploy", GitHubAPI: srv.URL + "/", GitHubToken: ghToken, Context: "shoal/prod"}, 0)
	if err := n.Send(ctx, Report{Commit: sha, State: Superseded}); err != nil {
		t.Fatal(err)
	}
	got := fake.requests()[0]
	if _, ok := got["target_url"]; ok || got["description"] != "superseded by a newer commit" || got["context"] != "shoal/prod" {
		t.Errorf("got %v", got)
	}
}

func TestDescriptionTruncation(t *testing.T) {
	fake, srv := newFakeGitHub(t, "acme/deploy", ghToken)
	n, _, ctx := testNotifier(t, Config{GitHubRepo: "acme/deploy", GitHubAPI: srv.URL, GitHubToken: ghToken}, 0)
	r := report(Failure)
	r.Description = strings.Repeat("é🚀", 100) + "\nsecond line" // 200 runes, multi-byte
	if err := n.Send(ctx, r); err != nil {
		t.Fatal(err) // the fake answers 422 to more than 140 characters
	}
	d := fake.requests()[0]["description"].(string)
	if utf8.RuneCountInString(d) != 140 || !strings.HasSuffix(d, "…") || !utf8.ValidString(d) || strings.Contains(d, "\n") {
		t.Errorf("description %q (%d runes)", d, utf8.RuneCountInString(d))
	}
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 140, "short"},
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abcde…"},
		{"ééééééé", 3, "éé…"},
	} {
		if got := truncate(tc.in, tc.limit); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
	if got := oneLine("a\r\n\tb\x1b[2Jc  d\u2028e"); got != "a b [2Jc d e" {
		t.Errorf("oneLine = %q", got)
	}
}

func TestGitLabStatuses(t *testing.T) {
	for _, project := range []struct{ path, escaped string }{
		{"acme/platform/deploy", "acme%2Fplatform%2Fdeploy"},
		{"4242", "4242"},
	} {
		fake, srv := newFakeGitLab(t, project.escaped, glToken)
		n, c, ctx := testNotifier(t, Config{GitLabProject: project.path, GitLabAPI: srv.URL, GitLabToken: glToken,
			Context: "shoal-prod", LinkURL: "https://shoal.example/c/{commit}"}, 0)
		// A second pending (a retry whose answer was lost) gets GitLab's 400 and counts
		// as delivered; then the commit fails, and a later one's pending is superseded.
		other := strings.Repeat("f", 40)
		for _, r := range []Report{report(Pending), report(Pending), report(Failure), {Commit: other, State: Pending}, {Commit: other, State: Superseded}} {
			if err := n.Send(ctx, r); err != nil {
				t.Fatalf("%s %s: %v", project.path, r.State, err)
			}
		}
		var states []string
		for _, got := range fake.requests() {
			states = append(states, got["state"].(string))
			if got["name"] != "shoal-prod" || !strings.HasPrefix(got["target_url"].(string), "https://shoal.example/c/") {
				t.Errorf("GitLab got %v", got)
			}
		}
		if fmt.Sprint(states) != "[pending failed pending canceled]" || len(c.recorded()) != 0 {
			t.Errorf("%s: accepted %v, waits %v", project.path, states, c.recorded())
		}
	}
}

func TestGitLabOtherBadRequestIsPermanent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"403 Forbidden - sha is not a commit of the project"}`)
	}))
	defer srv.Close()
	n, _, ctx := testNotifier(t, Config{GitLabProject: "acme/deploy", GitLabAPI: srv.URL, GitLabToken: glToken}, 0)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "gitlab: HTTP 400") || calls.Load() != 1 {
		t.Errorf("err %v after %d calls: want a permanent 400", err, calls.Load())
	}
}

func TestWebhook(t *testing.T) {
	rc, srv := newReceiver(t, hookSecret)
	n, _, ctx := testNotifier(t, Config{WebhookURL: srv.URL + "/hooks/shoal?team=ops", WebhookSecret: hookSecret,
		LinkURL: "https://shoal.example/{commit}"}, 0)
	r := report(Failure)
	for i := range 30 {
		r.Errors = append(r.Errors, fmt.Sprintf("apps/%d.yaml:%d: bad", i, i))
	}
	r.Errors[1] += strings.Repeat("y", 5000)
	r.Workloads = []WorkloadResult{{Namespace: "web", Name: "api", Outcome: "reverted", Reason: strings.Repeat("x", 5000)}}
	if err := n.Send(ctx, r); err != nil {
		t.Fatal(err)
	}
	p, h := rc.got[0], rc.header[0]
	if p.ID != r.ID() || p.Commit != sha || p.State != Failure || p.Node != "node-a" || !p.Time.Equal(fixedTime) ||
		p.Link != "https://shoal.example/"+sha || p.Description != r.Description {
		t.Errorf("payload %+v", p)
	}
	if len(p.Errors) != MaxWebhookErrors || p.Errors[0] != "apps/0.yaml:0: bad" || utf8.RuneCountInString(p.Errors[1]) != MaxWebhookText {
		t.Errorf("errors %v: want the first %d", p.Errors, MaxWebhookErrors)
	}
	if len(p.Workloads) != 1 || p.Workloads[0].Outcome != "reverted" || utf8.RuneCountInString(p.Workloads[0].Reason) != MaxWebhookText {
		t.Errorf("workloads %+v", p.Workloads)
	}
	if h.Get("X-Shoal-Delivery") != r.ID() || h.Get("X-Shoal-Event") != "commit-status" || h.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", h)
	}

	// Lists are [] not null, and a zero Time becomes the time of sending.
	if err := n.Send(ctx, Report{Commit: sha, State: Pending}); err != nil {
		t.Fatal(err)
	}
	body := (&webhook{}).body(Report{Commit: sha, State: Pending})
	if !strings.Contains(string(body), `"errors":[]`) || !strings.Contains(string(body), `"workloads":[]`) || !rc.got[1].Time.Equal(fixedTime) {
		t.Errorf("body %s, time %v", body, rc.got[1].Time)
	}
}

func TestWebhookWrongSecretRefused(t *testing.T) {
	rc, srv := newReceiver(t, "the-receivers-secret")
	n, _, ctx := testNotifier(t, Config{WebhookURL: srv.URL, WebhookSecret: hookSecret}, 0)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "webhook: HTTP 401") || len(rc.got) != 0 {
		t.Errorf("err %v, delivered %d: want the receiver to refuse it", err, len(rc.got))
	}
	assertNoSecrets(t, err)
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	good := "sha256=" + sign([]byte("s3cret"), body)
	for _, tc := range []struct {
		secret, body, header string
		want                 bool
	}{
		{"s3cret", string(body), good, true},
		{"other", string(body), good, false},
		{"s3cret", `{"id":"y"}`, good, false},
		{"s3cret", string(body), strings.TrimPrefix(good, "sha256="), false},
		{"s3cret", string(body), "sha1=" + strings.TrimPrefix(good, "sha256="), false},
		{"s3cret", string(body), "sha256=zz", false},
		{"s3cret", string(body), good[:len(good)-2], false},
		{"s3cret", string(body), "", false},
		{"", string(body), "sha256=" + sign(nil, body), false},
	} {
		if got := VerifySignature([]byte(tc.secret), []byte(tc.body), tc.header); got != tc.want {
			t.Errorf("VerifySignature(%q, %q, %q) = %v", tc.secret, tc.body, tc.header, got)
		}
	}
}

func TestID(t *testing.T) {
	a, b := report(Success), report(Success)
	b.Description, b.Node, b.Time = "other", "node-b", time.Now()
	if a.ID() != b.ID() || len(a.ID()) != 64 {
		t.Errorf("the same transition has IDs %s and %s", a.ID(), b.ID())
	}
	seen := map[string]State{}
	for _, s := range []State{Pending, Success, Failure, Superseded} {
		r := report(s)
		if prev, dup := seen[r.ID()]; dup {
			t.Errorf("%s and %s share ID %s", s, prev, r.ID())
		}
		seen[r.ID()] = s
	}
	if c := (Report{Commit: strings.Repeat("1", 40), State: Success}); c.ID() == a.ID() {
		t.Error("two commits share an ID")
	}
}

func TestRetryServerErrorThenCreated(t *testing.T) {
	fake := &fakeGitHub{t: t, token: ghToken, repo: "acme/deploy"}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"message":"Server Error"}`)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	n, c, ctx := testNotifier(t, Config{GitHubRepo: "acme/deploy", GitHubAPI: srv.URL, GitHubToken: ghToken}, 0)
	if err := n.Send(ctx, report(Success)); err != nil {
		t.Fatal(err)
	}
	if got := c.recorded(); fmt.Sprint(got) != "[1s 2s]" || len(fake.requests()) != 1 {
		t.Errorf("waits %v, created %d: want [1s 2s] and 1", got, len(fake.requests()))
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		header map[string]string
		want   time.Duration
	}{
		{"429 seconds", 429, map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"503 date", 503, map[string]string{"Retry-After": fixedTime.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"429 shorter than backoff", 429, map[string]string{"Retry-After": "0"}, time.Second},
		{"429 capped", 429, map[string]string{"Retry-After": "999999999"}, MaxRetryAfter},
		{"GitHub secondary limit", 403, map[string]string{"Retry-After": "60"}, time.Minute},
		{"GitHub primary limit", 403, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": fmt.Sprint(fixedTime.Add(10 * time.Minute).Unix())}, 10 * time.Minute},
		{"408", 408, nil, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, hook := newReceiver(t, hookSecret)
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					for k, v := range tc.header {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tc.code)
					return
				}
				hook.Config.Handler.ServeHTTP(w, r)
			}))
			defer srv.Close()
			n, c, ctx := testNotifier(t, Config{WebhookURL: srv.URL, WebhookSecret: hookSecret}, 0)
			if err := n.Send(ctx, report(Success)); err != nil {
				t.Fatal(err)
			}
			if got := c.recorded(); len(got) != 1 || got[0] != tc.want || len(rc.got) != 1 {
				t.Errorf("waits %v, delivered %d: want [%v] and 1", got, len(rc.got), tc.want)
			}
		})
	}
}

func TestPermanentErrorsNotRetried(t *testing.T) {
	_, gh := newFakeGitHub(t, "acme/deploy", ghToken)
	for _, tc := range []struct {
		name string
		cfg  Config
		r    Report
		want string
	}{
		{"bad token", Config{GitHubRepo: "acme/deploy", GitHubAPI: gh.URL, GitHubToken: "ghp_WRONG"}, report(Success), "HTTP 401 Unauthorized: {\"message\":\"Bad credentials\""},
		{"unprocessable", Config{GitHubRepo: "acme/deploy", GitHubAPI: gh.URL, GitHubToken: ghToken}, Report{Commit: sha, State: "running"}, "unknown state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, c, ctx := testNotifier(t, tc.cfg, 0)
			err := n.Send(ctx, tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(c.recorded()) != 0 {
				t.Errorf("err %v, waits %v: want %q at once", err, c.recorded(), tc.want)
			}
		})
	}
	// A 422 from GitHub, which the state mapping never causes, is not retried either.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"message":"Validation Failed"}`)
	}))
	defer srv.Close()
	n, c, ctx := testNotifier(t, Config{GitHubRepo: "acme/deploy", GitHubAPI: srv.URL, GitHubToken: ghToken}, 0)
	if err := n.Send(ctx, report(Success)); err == nil || calls.Load() != 1 || len(c.recorded()) != 0 || !strings.Contains(err.Error(), "(not retried)") {
		t.Errorf("err %v after %d calls", err, calls.Load())
	}
}

func TestServerDownRetriedUntilContextEnds(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	addr := down.URL
	down.Close() // connection refused from now on
	n, c, ctx := testNotifier(t, Config{WebhookURL: addr + "/hooks/SECRETPATH", WebhookSecret: hookSecret}, 12)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "notify: webhook: POST to 127.0.0.1:") || !strings.Contains(err.Error(), "gave up after 12 attempts") {
		t.Errorf("err %v", err)
	}
	assertNoSecrets(t, err)
	want := "[1s 2s 4s 8s 16s 32s 1m4s 2m8s 4m16s 5m0s 5m0s 5m0s]"
	if got := fmt.Sprint(c.recorded()); got != want {
		t.Errorf("waits %s, want %s", got, want)
	}
}

func TestEverySinkGetsTheReport(t *testing.T) {
	gh, ghSrv := newFakeGitHub(t, "acme/deploy", ghToken)
	gl, glSrv := newFakeGitLab(t, "acme%2Fdeploy", "glpat-OTHER")
	rc, hook := newReceiver(t, hookSecret)
	n, _, ctx := testNotifier(t, Config{
		GitHubRepo: "acme/deploy", GitHubAPI: ghSrv.URL, GitHubToken: ghToken,
		GitLabProject: "acme/deploy", GitLabAPI: glSrv.URL, GitLabToken: glToken, // wrong token
		WebhookURL: hook.URL, WebhookSecret: hookSecret,
	}, 0)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "notify: gitlab: HTTP 401") || strings.Contains(err.Error(), "github") || strings.Contains(err.Error(), "webhook") {
		t.Errorf("err %v: want only gitlab named", err)
	}
	assertNoSecrets(t, err)
	if len(gh.requests()) != 1 || len(gl.requests()) != 0 || len(rc.got) != 1 {
		t.Errorf("delivered github %d, gitlab %d, webhook %d", len(gh.requests()), len(gl.requests()), len(rc.got))
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	// A server that echoes the request, headers and all, into its error answer.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, "\x1b]0;pwned\x07 %s %s %v", r.Header.Get("Authorization"), r.Header.Get("Private-Token"), r.Header)
	}))
	defer srv.Close()
	n, _, ctx := testNotifier(t, Config{
		GitHubRepo: "acme/deploy", GitHubAPI: srv.URL, GitHubToken: ghToken,
		GitLabProject: "acme/deploy", GitLabAPI: srv.URL, GitLabToken: glToken,
	}, 0)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "[redacted]") || strings.Contains(err.Error(), "\x1b") {
		t.Fatalf("err %q: want the echoed tokens redacted and escapes escaped", err)
	}
	assertNoSecrets(t, err)
	for _, line := range strings.Split(err.Error(), "\n") {
		if _, excerpt, _ := strings.Cut(line, "Unauthorized: "); len(excerpt) > 250 {
			t.Errorf("excerpt of %d bytes: %q", len(excerpt), excerpt)
		}
	}
}

func TestLargeAnswerBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		for range 1024 { // 8 MiB, more than anyone should read
			w.Write([]byte(strings.Repeat("A", 8<<10)))
		}
	}))
	defer srv.Close()
	n, _, ctx := testNotifier(t, Config{WebhookURL: srv.URL, WebhookSecret: hookSecret}, 0)
	err := n.Send(ctx, report(Success))
	var se *statusError
	if !errors.As(err, &se) || len(se.body) != MaxResponseBody || len(se.excerpt) != maxErrorBody || !se.permanent {
		t.Errorf("err %v", err)
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	var leaked atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Private-Token") != "" || r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/steal", http.StatusTemporaryRedirect))
	defer srv.Close()
	n, c, ctx := testNotifier(t, Config{GitLabProject: "acme/deploy", GitLabAPI: srv.URL, GitLabToken: glToken,
		HTTPClient: &http.Client{Timeout: time.Second}}, 0)
	err := n.Send(ctx, report(Success))
	if err == nil || !strings.Contains(err.Error(), "redirects are not followed") || leaked.Load() != 0 || len(c.recorded()) != 0 {
		t.Errorf("err %v, leaked %d, waits %v", err, leaked.Load(), c.recorded())
	}
}

func TestBadReportRefused(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	n, _, ctx := testNotifier(t, Config{WebhookURL: srv.URL, WebhookSecret: hookSecret}, 0)
	for _, r := range []Report{
		{Commit: "main", State: Success},
		{Commit: "../../x" + sha[7:], State: Success},
		{Commit: strings.ToUpper(sha), State: Success},
		{Commit: sha, State: ""},
	} {
		if err := n.Send(ctx, r); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests for bad reports", calls.Load())
	}
}

func TestDisabled(t *testing.T) {
	var nilN *Notifier
	if nilN.Enabled() || nilN.Send(context.Background(), report(Success)) != nil {
		t.Error("a nil Notifier is not disabled")
	}
	n, err := New(Config{GitHubToken: ghToken, GitLabToken: glToken, WebhookSecret: hookSecret})
	if err != nil || n.Enabled() || n.Send(context.Background(), Report{}) != nil {
		t.Errorf("credentials alone enable a sink: %v", err)
	}
	if n, err := New(Config{WebhookURL: "https://hooks.example/x", WebhookSecret: "s"}); err != nil || !n.Enabled() {
		t.Errorf("webhook: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	gh := Config{GitHubRepo: "acme/deploy", GitHubToken: ghToken}
	with := func(f func(*Config)) Config { c := gh; f(&c); return c }
	if _, err := New(gh); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := New(Config{GitLabProject: "acme/deploy", GitLabToken: glToken}); err != nil {
		t.Fatalf("GitLab defaults: %v", err)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{with(func(c *Config) { c.GitHubToken = "" }), "GitHubToken"},
		{with(func(c *Config) { c.GitHubToken = ghToken + "\n" }), "GitHubToken"},
		{with(func(c *Config) { c.GitHubRepo = "acme" }), "GitHubRepo"},
		{with(func(c *Config) { c.GitHubRepo = "acme/deploy/x" }), "GitHubRepo"},
		{with(func(c *Config) { c.GitHubRepo = "../deploy" }), "GitHubRepo"},
		{with(func(c *Config) { c.GitHubAPI = "http://github.internal/api/v3" }), "GitHubAPI"},
		{with(func(c *Config) { c.GitHubAPI = "https://user:" + ghToken + "@github.internal" }), "GitHubAPI"},
		{with(func(c *Config) { c.GitHubAPI = "ftp://github.internal" }), "GitHubAPI"},
		{with(func(c *Config) { c.GitHubAPI = "https://api.github.com?x=1" }), "GitHubAPI"},
		{with(func(c *Config) { c.GitHubAPI = "api.github.com" }), "GitHubAPI"},
		{with(func(c *Config) { c.Context = "a\nb" }), "Context"},
		{with(func(c *Config) { c.Context = strings.Repeat("c", MaxContext+1) }), "Context"},
		{with(func(c *Config) { c.LinkURL = "javascript:alert(1)" }), "LinkURL"},
		{with(func(c *Config) { c.LinkURL = "/relative/{commit}" }), "LinkURL"},
		{Config{GitLabProject: "acme/deploy"}, "GitLabToken"},
		{Config{GitLabProject: "acme", GitLabToken: glToken}, "GitLabProject"},
		{Config{GitLabProject: "acme/../x", GitLabToken: glToken}, "GitLabProject"},
		{Config{GitLabProject: "acme/x", GitLabToken: glToken, GitLabAPI: "http://10.0.0.1"}, "GitLabAPI"},
		{Config{WebhookURL: "https://hooks.example/x"}, "WebhookSecret"},
		{Config{WebhookURL: "http://hooks.example/x", WebhookSecret: hookSecret}, "WebhookURL"},
	} {
		_, err := New(tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: err %v, want one about %s", tc.cfg, err, tc.field)
		}
		assertNoSecrets(t, err)
	}
	for _, loopback := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080/api"} {
		if _, err := New(with(func(c *Config) { c.GitHubAPI = loopback })); err != nil {
			t.Errorf("%s: %v", loopback, err)
		}
	}
}

func TestBackoffAndJitter(t *testing.T) {
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := backoff(attempt); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempt, got, want)
		}
	}
	if backoff(8) != 256*time.Second || backoff(9) != MaxBackoff || backoff(1000) != MaxBackoff {
		t.Errorf("backoff(8, 9, 1000) = %v %v %v", backoff(8), backoff(9), backoff(1000))
	}
	for _, d := range []time.Duration{time.Second, time.Minute, MaxBackoff} {
		for range 100 {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v, outside [d/2, d]", d, j)
			}
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleep = %v", err)
	}
	if err := sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleep = %v", err)
	}
}
