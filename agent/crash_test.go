package agent

import (
	"log/slog"
	"testing"
	"time"
)

// TestCrashRestartDelaysFollowTheDocumentedSchedule drives the agent's crash handling with
// the default configuration (what `--crash-backoff 10s` gives) and checks the delays that
// the README and the flag promise: the first crash in a row restarts at once, then 10s,
// 20s, 40s, … capped at 5m, and a container that ran 10 minutes starts the schedule again.
// Base main waited 0, 20s, 40s: the immediate first restart used up the 10s step.
func TestCrashRestartDelaysFollowTheDocumentedSchedule(t *testing.T) {
	const s = time.Second
	cfg := DefaultConfig("node-a")
	cfg.Logger = slog.New(slog.DiscardHandler)
	a := newCore(cfg, false, DNSConfig{})
	c := &container{name: "main", backoff: a.cfg.CrashBackoff}
	in := &instance{id: "web-1", containers: map[string]*container{"main": c}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, step := range []struct{ ran, delay time.Duration }{
		{s, 0}, {s, 10 * s}, {s, 20 * s}, {s, 40 * s}, {s, 80 * s}, {s, 160 * s}, {s, 300 * s}, {s, 300 * s},
		{10 * time.Minute, 0}, // ran long enough: the next crash counts as the first
		{s, 10 * s},
	} {
		c.startedAt = now
		now = now.Add(step.ran)
		a.now = now
		a.crashed(in, c, 1, false, now)
		if got := c.restartAt.Sub(now); got != step.delay {
			t.Fatalf("crash %d (after running %v): restart in %v, want %v", i+1, step.ran, got, step.delay)
		}
		now = c.restartAt // the restart happens when due
	}
}
