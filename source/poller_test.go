package source

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testPollerConfig polls fast with no jitter, so that backoff delays are exact.
func testPollerConfig() PollerConfig {
	cfg := DefaultPollerConfig()
	cfg.Interval = 10 * time.Millisecond
	cfg.Jitter = 0
	cfg.BackoffBase = 10 * time.Millisecond
	cfg.BackoffMax = 40 * time.Millisecond
	cfg.Timeout = 30 * time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// startPoller runs a Poller over r until the test ends, then checks that Run returned,
// Events was closed and no goroutine was left behind.
func startPoller(t *testing.T, r *Repo, cfg PollerConfig) *Poller {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first, so it runs last
	p, err := NewPoller(r, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range p.Events() { // Run may be waiting to deliver
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p
}

func receive(t *testing.T, p *Poller) Event {
	t.Helper()
	select {
	case ev, ok := <-p.Events():
		if !ok {
			t.Fatal("Events closed early")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
		return Event{}
	}
}

func TestPollerEmitsOnlyNews(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), testPollerConfig())

	ev := receive(t, p)
	if ev.Err != nil || ev.Desired == nil || ev.Revision.Commit != c1 || configValue(ev.Desired, "app") != "v1" {
		t.Fatalf("first event %+v, want %s loaded", ev, c1)
	}
	if p.LastGood() != ev.Desired {
		t.Error("LastGood is not the revision just loaded")
	}
	// Many intervals pass with the head still on c1. Were unchanged heads reported, the
	// next event would be c1 again rather than c2.
	time.Sleep(20 * testPollerConfig().Interval)
	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	if ev := receive(t, p); ev.Revision.Commit != c2 || configValue(ev.Desired, "app") != "v2" {
		t.Fatalf("event %+v, want %s with v2", ev.Revision, c2)
	}
}

func TestPollerKeepsLastGoodOverRejectedRevision(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("good", map[string]string{"app.yaml": configMap("app", "v1")})
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), testPollerConfig())
	good := receive(t, p)
	if good.Revision.Commit != c1 {
		t.Fatalf("first event %+v", good.Revision)
	}

	c2 := up.Commit("bad", map[string]string{"bad.yaml": brokenManifest})
	ev := receive(t, p)
	if ev.Revision.Commit != c2 || ev.Desired != nil || !errors.Is(ev.Err, ErrRevisionRejected) || !ev.Diagnostics.HasErrors() {
		t.Fatalf("event for the broken commit: %+v; want it rejected with diagnostics", ev)
	}
	if p.LastGood() != good.Desired {
		t.Errorf("LastGood moved off %s after a rejected revision", c1)
	}

	// The rejected commit is not retried: the next event is the fix.
	c3 := up.Commit("fix", map[string]string{"bad.yaml": ""})
	ev = receive(t, p)
	if ev.Revision.Commit != c3 || ev.Err != nil || p.LastGood() != ev.Desired {
		t.Fatalf("event after the fix: %+v, want %s loaded and last good", ev.Revision, c3)
	}
}

func TestPollerBacksOffWhileRemoteIsGone(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	cfg := testPollerConfig()
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), cfg)
	good := receive(t, p)

	if err := os.Rename(up.Bare, up.Bare+".away"); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	for i, w := range want {
		ev := receive(t, p)
		if ev.Err == nil || ev.RetryIn != w {
			t.Fatalf("failure %d: err %v, retry in %v; want an error and %v", i+1, ev.Err, ev.RetryIn, w)
		}
		if p.LastGood() != good.Desired {
			t.Fatalf("failure %d: LastGood changed", i+1)
		}
	}

	if err := os.Rename(up.Bare+".away", up.Bare); err != nil {
		t.Fatal(err)
	}
	// Failures may still be in flight; the first success says "reachable again".
	for {
		ev := receive(t, p)
		if ev.Err != nil {
			continue
		}
		if ev.Revision.Commit != c1 || ev.Desired != nil || ev.RetryIn != 0 {
			t.Fatalf("recovery event %+v; want only the revision in force, %s", ev, c1)
		}
		break
	}
	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	if ev := receive(t, p); ev.Revision.Commit != c2 || ev.Desired == nil {
		t.Fatalf("after recovery: %+v, want %s loaded", ev.Revision, c2)
	}
}

// A restarted daemon gets the revision its clone holds even while the remote is down.
func TestPollerResumesFromCloneWithoutRemote(t *testing.T) {
	up := newUpstream(t)
	c1 := up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	state, src := t.TempDir(), Source{URL: up.Bare}
	cloneOnce(t, src, state)
	if err := os.Rename(up.Bare, up.Bare+".away"); err != nil {
		t.Fatal(err)
	}

	p := startPoller(t, openRepo(t, src, state), testPollerConfig())
	resumed := receive(t, p)
	if resumed.Err != nil || resumed.Revision.Commit != c1 || configValue(resumed.Desired, "app") != "v1" {
		t.Fatalf("first event %+v, want %s loaded from the clone", resumed, c1)
	}
	if ev := receive(t, p); ev.Err == nil || ev.RetryIn == 0 {
		t.Fatalf("second event %+v, want the unreachable remote reported", ev)
	}
	if p.LastGood() != resumed.Desired {
		t.Error("LastGood is not the resumed revision")
	}
}

func TestPollerReportsMissingBranch(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	p := startPoller(t, openRepo(t, Source{URL: up.Bare, Branch: "gone"}, t.TempDir()), testPollerConfig())
	if ev := receive(t, p); !errors.Is(ev.Err, ErrRefNotFound) || ev.RetryIn == 0 {
		t.Fatalf("event %+v, want ErrRefNotFound with a backoff", ev)
	}
	if p.LastGood() != nil {
		t.Error("LastGood set without any good revision")
	}
}

func TestPollerTrigger(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	cfg := testPollerConfig()
	cfg.Interval = time.Hour // only a trigger can make it look again
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), cfg)
	receive(t, p)

	c2 := up.Commit("two", map[string]string{"app.yaml": configMap("app", "v2")})
	for range 1000 {
		p.Trigger() // never blocks, however many arrive
	}
	if ev := receive(t, p); ev.Revision.Commit != c2 {
		t.Fatalf("after trigger: %+v, want %s", ev.Revision, c2)
	}
}

func TestPollerRunsOnce(t *testing.T) {
	up := newUpstream(t)
	up.Commit("one", map[string]string{"app.yaml": configMap("app", "v1")})
	p := startPoller(t, openRepo(t, Source{URL: up.Bare}, t.TempDir()), testPollerConfig())
	receive(t, p)
	if err := p.Run(context.Background()); !errors.Is(err, ErrPollerStarted) {
		t.Errorf("second Run: %v, want ErrPollerStarted", err)
	}
}

func TestBackoff(t *testing.T) {
	base, max := 5*time.Second, 5*time.Minute
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{6, 160 * time.Second},
		{7, 5 * time.Minute},
		{8, 5 * time.Minute},
		{10_000, 5 * time.Minute},
	} {
		if got := backoff(tc.failures, base, max); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestJittered(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		frac float64
		u    float64
		want time.Duration
	}{
		{time.Minute, 0.1, 0, 54 * time.Second},
		{time.Minute, 0.1, 0.5, time.Minute},
		{time.Minute, 0.1, 0.75, 63 * time.Second},
		{time.Minute, 0, 0.99, time.Minute},
	} {
		if got := jittered(tc.d, tc.frac, tc.u); got != tc.want {
			t.Errorf("jittered(%v, %v, %v) = %v, want %v", tc.d, tc.frac, tc.u, got, tc.want)
		}
	}
	// Random draws stay within ±10%.
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		if d := jittered(time.Minute, 0.1, r.Float64()); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("jittered(1m, 0.1) = %v, outside ±10%%", d)
		}
	}
}

func TestPollerConfigValidate(t *testing.T) {
	// Open does not touch the remote, so it need not exist.
	repo := openRepo(t, Source{URL: "/nonexistent/repo.git"}, t.TempDir())
	if _, err := NewPoller(repo, DefaultPollerConfig()); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(*PollerConfig)
		want  string
	}{
		{"zero interval", func(c *PollerConfig) { c.Interval = 0 }, "Interval"},
		{"negative jitter", func(c *PollerConfig) { c.Jitter = -0.1 }, "Jitter"},
		{"jitter of 1", func(c *PollerConfig) { c.Jitter = 1 }, "Jitter"},
		{"zero backoff", func(c *PollerConfig) { c.BackoffBase = 0 }, "BackoffBase"},
		{"max below base", func(c *PollerConfig) { c.BackoffMax = c.BackoffBase / 2 }, "BackoffMax"},
		{"zero timeout", func(c *PollerConfig) { c.Timeout = 0 }, "Timeout"},
	} {
		cfg := DefaultPollerConfig()
		tc.spoil(&cfg)
		if _, err := NewPoller(repo, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewPoller: %v, want an error about %s", tc.name, err, tc.want)
		}
	}
	if _, err := NewPoller(nil, DefaultPollerConfig()); err == nil {
		t.Error("NewPoller without a Repo accepted")
	}
}
