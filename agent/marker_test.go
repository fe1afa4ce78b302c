package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// recordingMarker records the calls the agent makes, in order.
type recordingMarker struct {
	mu    sync.Mutex
	calls []string
}

func (m *recordingMarker) Applying(c string) error { m.add("applying " + c); return nil }
func (m *recordingMarker) Survived(c string) error { m.add("survived " + c); return nil }
func (m *recordingMarker) Release(c string) error  { m.add("released " + c); return nil }
func (m *recordingMarker) Retry(c string) (bool, error) {
	m.add("retry " + c)
	return true, nil
}

func (m *recordingMarker) add(call string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, call)
}

func (m *recordingMarker) snapshot() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// TestAgentMarksRevisions: the agent records a revision as applying before it plans it,
// as survived once it ran with it for SurviveAfter, and, told that the head is the suspect
// revision, reports it and runs the trusted one the poller sent in its place.
func TestAgentMarksRevisions(t *testing.T) {
	a, marker, revs, stop := runMarkedAgent(t, 50*time.Millisecond)
	defer stop()

	desired := func(n int) *spec.Desired {
		set, diags := spec.Load(fstest.MapFS{"ns.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n")}}, spec.LoadOptions{})
		if set == nil {
			t.Fatal(diags)
		}
		return &spec.Desired{Revision: spec.Revision{Commit: fmt.Sprintf("%040d", n)}, Objects: set}
	}
	waitCalls := func(want ...string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got := marker.snapshot(); fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
		}
		t.Fatalf("marker calls %q, want %q", marker.snapshot(), want)
	}
	good := desired(1)
	revs <- source.Event{Revision: good.Revision, Desired: good}
	waitCalls("applying "+good.Revision.Commit, "survived "+good.Revision.Commit)

	suspect, trusted := desired(2), desired(3)
	revs <- source.Event{Revision: suspect.Revision, Desired: trusted, Err: fmt.Errorf("%w: test", source.ErrRevisionSuspect)}
	waitCalls("applying "+good.Revision.Commit, "survived "+good.Revision.Commit,
		"applying "+trusted.Revision.Commit, "survived "+trusted.Revision.Commit)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := a.Status()
		if st.Desired != nil && st.Desired.Commit == trusted.Revision.Commit && st.Sync.Rejected != nil &&
			st.Sync.Rejected.Commit == suspect.Revision.Commit && strings.Contains(st.Sync.Error, source.ErrRevisionSuspect.Error()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: want the trusted revision desired and the suspect reported", st.Sync)
		}
	}
}

// TestBillionReplicasRejectedByAgent is issue #8's attack as the agent sees it: a commit
// with replicas: 1000000000 is rejected with the limit named, and what runs keeps running.
func TestBillionReplicasRejectedByAgent(t *testing.T) {
	h := newHarness(t, nil)
	good := h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 2, "")})
	h.waitFor("2 ready", readyWith("web", 2, "hello:v1"))

	h.push(map[string]string{"web.yaml": deployment("web", "hello:v1", 1_000_000_000, "")})
	st := h.waitFor("rejection reported", func(st *Status) bool { return st.Sync.Rejected != nil })
	want := "web.yaml:6: spec.replicas: 1000000000 replicas is over the limit of 10,000 per Deployment (max-replicas-per-deployment)"
	if len(st.Sync.Diagnostics) != 1 || st.Sync.Diagnostics[0].String() != want {
		t.Errorf("diagnostics %v, want %q", st.Sync.Diagnostics, want)
	}
	if st.Desired.Commit != good.Commit || !readyWith("web", 2, "hello:v1")(st) {
		t.Errorf("the last good revision did not stay:\n%s", dump(st))
	}
}

// TestAgentCleanStopIsNoCrash: an agent stopped (SIGTERM) before its revision survived
// tells the marker, so that a restart does not take the revision for one that crashed it.
func TestAgentCleanStopIsNoCrash(t *testing.T) {
	a, marker, revs, stop := runMarkedAgent(t, time.Hour)
	// Its image cannot be pulled: the agent never converges on it, so only time could make
	// it survive.
	set, diags := spec.Load(fstest.MapFS{"web.yaml": {Data: []byte(deployment("web", "missing:v1", 1, ""))}}, spec.LoadOptions{})
	if set == nil {
		t.Fatal(diags)
	}
	rev := spec.Revision{Commit: fmt.Sprintf("%040d", 7)}
	revs <- source.Event{Revision: rev, Desired: &spec.Desired{Revision: rev, Objects: set}}
	for a.Status().Desired == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if got, want := marker.snapshot(), []string{"applying " + rev.Commit, "released " + rev.Commit}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("marker calls %q, want %q", got, want)
	}
}

// runMarkedAgent runs an agent on a fake runtime that records its marker calls and
// trusts a revision after surviveAfter; stop cancels it and waits for Run to return.
func runMarkedAgent(t *testing.T, surviveAfter time.Duration) (a *Agent, marker *recordingMarker, revs chan source.Event, stop func()) {
	t.Helper()
	fake := executortest.NewFake(executortest.FakeConfig{StateDir: t.TempDir()})
	t.Cleanup(func() { fake.Close() })
	cfg := DefaultConfig("node-a")
	cfg.Logger, cfg.SurviveAfter = slog.New(slog.DiscardHandler), surviveAfter
	marker, revs = &recordingMarker{}, make(chan source.Event)
	a, err := New(cfg, fake, revs, WithRevisionMarker(marker))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, marker, revs, func() { cancel(); <-done }
}
