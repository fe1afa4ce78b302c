package executor

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// noNext is a wanted Next of a tracker that does not check (held or finished).
const noNext = time.Duration(-1)

var errProbeFailed = errors.New("status 500")

// trackerStep is one input to a ProbeTracker and what must follow. Times are relative to
// the container's start.
type trackerStep struct {
	release  bool // Release at `at` instead of recording a check
	at, took time.Duration
	err      error
	changed  bool
	verdict  ProbeVerdict
	next     time.Duration
}

func ok(at time.Duration, changed bool, v ProbeVerdict, next time.Duration) trackerStep {
	return trackerStep{at: at, took: 10 * time.Millisecond, changed: changed, verdict: v, next: next}
}

func fail(at time.Duration, changed bool, v ProbeVerdict, next time.Duration) trackerStep {
	return trackerStep{at: at, took: 10 * time.Millisecond, err: errProbeFailed, changed: changed, verdict: v, next: next}
}

func TestProbeTracker(t *testing.T) {
	const s = time.Second
	probe := func(kind ProbeKind, edit func(*ProbeSpec)) ProbeSpec {
		p := ProbeSpec{Kind: kind, TCPSocket: &TCPProbe{Port: 80}, InitialDelay: 5 * s, Timeout: s, Period: 10 * s,
			SuccessThreshold: 1, FailureThreshold: 3}
		if edit != nil {
			edit(&p)
		}
		return p
	}
	tests := []struct {
		name        string
		probe       ProbeSpec
		held        bool
		initial     ProbeVerdict
		initialNext time.Duration
		steps       []trackerStep
	}{
		{
			name:  "readiness starts not ready, one success makes it ready, three failures not",
			probe: probe(ProbeReadiness, nil), initial: ProbeUnhealthy, initialNext: 5 * s,
			steps: []trackerStep{
				ok(5*s, true, ProbeHealthy, 15*s),
				fail(15*s, false, ProbeHealthy, 25*s),
				fail(25*s, false, ProbeHealthy, 35*s),
				fail(35*s, true, ProbeUnhealthy, 45*s),
				fail(45*s, false, ProbeUnhealthy, 55*s), // readiness keeps checking
				ok(55*s, true, ProbeHealthy, 65*s),
			},
		},
		{
			name:  "readiness with successThreshold 2: a failure in between starts the count over",
			probe: probe(ProbeReadiness, func(p *ProbeSpec) { p.SuccessThreshold = 2 }), initial: ProbeUnhealthy, initialNext: 5 * s,
			steps: []trackerStep{
				ok(5*s, false, ProbeUnhealthy, 15*s),
				fail(15*s, false, ProbeUnhealthy, 25*s),
				ok(25*s, false, ProbeUnhealthy, 35*s),
				ok(35*s, true, ProbeHealthy, 45*s),
			},
		},
		{
			name:  "liveness starts healthy and stops checking once it failed threshold times",
			probe: probe(ProbeLiveness, nil), initial: ProbeHealthy, initialNext: 5 * s,
			steps: []trackerStep{
				ok(5*s, false, ProbeHealthy, 15*s),
				fail(15*s, false, ProbeHealthy, 25*s),
				fail(25*s, false, ProbeHealthy, 35*s),
				fail(35*s, true, ProbeUnhealthy, noNext),
				ok(45*s, false, ProbeUnhealthy, noNext), // ignored: the container is being restarted
			},
		},
		{
			name:  "liveness failures interrupted by a success do not add up",
			probe: probe(ProbeLiveness, nil), initial: ProbeHealthy, initialNext: 5 * s,
			steps: []trackerStep{
				fail(5*s, false, ProbeHealthy, 15*s),
				fail(15*s, false, ProbeHealthy, 25*s),
				ok(25*s, false, ProbeHealthy, 35*s),
				fail(35*s, false, ProbeHealthy, 45*s),
				fail(45*s, false, ProbeHealthy, 55*s),
				fail(55*s, true, ProbeUnhealthy, noNext),
			},
		},
		{
			name:  "a success slower than the timeout is a failure",
			probe: probe(ProbeLiveness, func(p *ProbeSpec) { p.FailureThreshold = 1 }), initial: ProbeHealthy, initialNext: 5 * s,
			steps: []trackerStep{
				{at: 5 * s, took: s, verdict: ProbeHealthy, next: 15 * s}, // exactly the timeout passes
				{at: 15 * s, took: s + time.Millisecond, changed: true, verdict: ProbeUnhealthy, next: noNext},
			},
		},
		{
			name:  "the next check is a period after the last one started, however long it took",
			probe: probe(ProbeReadiness, func(p *ProbeSpec) { p.Timeout = 20 * s }), initial: ProbeUnhealthy, initialNext: 5 * s,
			steps: []trackerStep{
				{at: 7 * s, took: 12 * s, changed: true, verdict: ProbeHealthy, next: 17 * s},
			},
		},
		{
			name:  "no initial delay: the first check is due at the start",
			probe: probe(ProbeReadiness, func(p *ProbeSpec) { p.InitialDelay = 0 }), initial: ProbeUnhealthy, initialNext: 0,
		},
		{
			name:  "startup starts unknown, succeeds once and stops",
			probe: probe(ProbeStartup, func(p *ProbeSpec) { p.FailureThreshold = 30 }), initial: ProbeUnknown, initialNext: 5 * s,
			steps: []trackerStep{
				fail(5*s, false, ProbeUnknown, 15*s),
				fail(15*s, false, ProbeUnknown, 25*s),
				ok(25*s, true, ProbeHealthy, noNext),
			},
		},
		{
			name:  "startup failing threshold times is unhealthy and stops",
			probe: probe(ProbeStartup, func(p *ProbeSpec) { p.FailureThreshold = 2 }), initial: ProbeUnknown, initialNext: 5 * s,
			steps: []trackerStep{
				fail(5*s, false, ProbeUnknown, 15*s),
				fail(15*s, true, ProbeUnhealthy, noNext),
			},
		},
		{
			name:  "held until released, then not before the initial delay",
			probe: probe(ProbeLiveness, func(p *ProbeSpec) { p.InitialDelay = 20 * s }), held: true, initial: ProbeHealthy, initialNext: noNext,
			steps: []trackerStep{
				fail(5*s, false, ProbeHealthy, noNext), // ignored while held
				{release: true, at: 8 * s, verdict: ProbeHealthy, next: 20 * s},
				fail(20*s, false, ProbeHealthy, 30*s),
			},
		},
		{
			name:  "released after the initial delay: due at once",
			probe: probe(ProbeReadiness, nil), held: true, initial: ProbeUnhealthy, initialNext: noNext,
			steps: []trackerStep{
				{release: true, at: 40 * s, verdict: ProbeUnhealthy, next: 40 * s},
				{release: true, at: 60 * s, verdict: ProbeUnhealthy, next: 40 * s}, // a second release changes nothing
				ok(41*s, true, ProbeHealthy, 51*s),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			tr := NewProbeTracker(tt.probe, start, tt.held)
			check := func(what string, verdict ProbeVerdict, next time.Duration) {
				t.Helper()
				if tr.Verdict() != verdict {
					t.Errorf("%s: verdict %v, want %v", what, tr.Verdict(), verdict)
				}
				at, due := tr.Next()
				if next == noNext && due {
					t.Errorf("%s: Next = %v after the start, want none", what, at.Sub(start))
				}
				if next != noNext && (!due || !at.Equal(start.Add(next))) {
					t.Errorf("%s: Next = %v after the start (due %v), want %v", what, at.Sub(start), due, next)
				}
			}
			check("initially", tt.initial, tt.initialNext)
			for i, st := range tt.steps {
				what := fmt.Sprintf("step %d", i)
				if st.release {
					tr.Release(start.Add(st.at))
				} else if changed := tr.Record(start.Add(st.at), st.took, st.err); changed != st.changed {
					t.Errorf("%s: Record changed = %v, want %v", what, changed, st.changed)
				}
				check(what, st.verdict, st.next)
			}
		})
	}
}

func TestProbeTrackerReason(t *testing.T) {
	p := ProbeSpec{Kind: ProbeReadiness, TCPSocket: &TCPProbe{Port: 80}, Timeout: time.Second, Period: time.Second,
		SuccessThreshold: 1, FailureThreshold: 1}
	start := time.Now()
	tr := NewProbeTracker(p, start, false)
	if tr.Reason() != "not probed yet" {
		t.Errorf("initial reason %q, want %q", tr.Reason(), "not probed yet")
	}
	tr.Record(start, 2*time.Second, nil)
	if r := tr.Reason(); !strings.Contains(r, "timeout") {
		t.Errorf("reason after a slow check %q, want one naming the timeout", r)
	}
	tr.Record(start.Add(time.Second), time.Millisecond, nil)
	if r := tr.Reason(); r != "" {
		t.Errorf("reason of a healthy probe %q, want none", r)
	}
	tr.Record(start.Add(2*time.Second), time.Millisecond, errProbeFailed)
	if r := tr.Reason(); r != errProbeFailed.Error() {
		t.Errorf("reason %q, want the check's error", r)
	}
}

// TestContainerProbesStartupGate checks that a startup probe holds liveness and readiness
// back until it succeeds, and that they then start at the later of that moment and their
// initial delay.
func TestContainerProbesStartupGate(t *testing.T) {
	const s = time.Second
	timing := func(kind ProbeKind, delay time.Duration) ProbeSpec {
		return ProbeSpec{Kind: kind, TCPSocket: &TCPProbe{Port: 80}, InitialDelay: delay, Timeout: s, Period: 10 * s,
			SuccessThreshold: 1, FailureThreshold: 3}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nexts := func(cp *containerProbes) []time.Duration {
		var out []time.Duration
		for _, tr := range cp.trackers {
			at, ok := tr.Next()
			if !ok {
				out = append(out, noNext)
				continue
			}
			out = append(out, at.Sub(start))
		}
		return out
	}
	tests := []struct {
		name   string
		probes []ProbeSpec
		// startup checks: each fails but the last, which succeeds
		startupChecks []time.Duration
		wantBefore    []time.Duration // Next of each tracker before the startup probe succeeds
		wantAfter     []time.Duration // and after
	}{
		{
			name:          "no startup probe: nothing held",
			probes:        []ProbeSpec{timing(ProbeLiveness, 3*s), timing(ProbeReadiness, 0)},
			wantBefore:    []time.Duration{3 * s, 0},
			wantAfter:     []time.Duration{3 * s, 0},
			startupChecks: nil,
		},
		{
			name:          "held until startup succeeds, then released at once",
			probes:        []ProbeSpec{timing(ProbeLiveness, 3*s), timing(ProbeReadiness, 0), timing(ProbeStartup, 0)},
			startupChecks: []time.Duration{0, 10 * s},
			wantBefore:    []time.Duration{noNext, noNext, 0},
			wantAfter:     []time.Duration{10*s + 10*time.Millisecond, 10*s + 10*time.Millisecond, noNext},
		},
		{
			name:          "released before the initial delay: waits for it",
			probes:        []ProbeSpec{timing(ProbeLiveness, 30*s), timing(ProbeStartup, 0)},
			startupChecks: []time.Duration{0},
			wantBefore:    []time.Duration{noNext, 0},
			wantAfter:     []time.Duration{30 * s, noNext},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp := newContainerProbes(&ContainerSpec{Probes: tt.probes}, start)
			if got := nexts(cp); !slices.Equal(got, tt.wantBefore) {
				t.Errorf("before: Next = %v, want %v", got, tt.wantBefore)
			}
			startup := len(tt.probes) - 1
			for i, at := range tt.startupChecks {
				var err error
				if i < len(tt.startupChecks)-1 {
					err = errProbeFailed
				}
				if changed := cp.record(startup, start.Add(at), 10*time.Millisecond, err); changed != (err == nil) {
					t.Errorf("startup check %d: changed = %v", i, changed)
				}
			}
			if got := nexts(cp); !slices.Equal(got, tt.wantAfter) {
				t.Errorf("after: Next = %v, want %v", got, tt.wantAfter)
			}
		})
	}
}
