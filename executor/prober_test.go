package executor_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
)

// probeWait bounds waiting for a report. Probes here check every 30ms; this is a deadline
// for liveness, not a speed target.
const probeWait = 10 * time.Second

// verdict is what a test expects of a report.
type verdict struct {
	kind    executor.ProbeKind
	healthy bool
}

func ready(ok bool) verdict { return verdict{executor.ProbeReadiness, ok} }
func alive(ok bool) verdict { return verdict{executor.ProbeLiveness, ok} }

// nextReport returns the next report, failing the test if none comes in time.
func nextReport(t *testing.T, out <-chan executor.ProbeResult) executor.ProbeResult {
	t.Helper()
	select {
	case r := <-out:
		return r
	case <-time.After(probeWait):
		t.Fatalf("no probe report within %v", probeWait)
		return executor.ProbeResult{}
	}
}

// expectReports reads len(want) reports and checks that they are want, in any order
// (probes of one container run concurrently), for container "app" of instance id.
func expectReports(t *testing.T, out <-chan executor.ProbeResult, id string, want ...verdict) []executor.ProbeResult {
	t.Helper()
	var got []executor.ProbeResult
	left := append([]verdict(nil), want...)
	for range want {
		r := nextReport(t, out)
		got = append(got, r)
		i := -1
		for j, v := range left {
			if v == (verdict{r.Kind, r.Healthy}) {
				i = j
			}
		}
		if i < 0 || r.InstanceID != id || r.Container != "app" || r.Time.IsZero() {
			t.Fatalf("report %+v; want one of %+v for %s/app", r, left, id)
		}
		left = append(left[:i], left[i+1:]...)
	}
	return got
}

// expectQuiet checks that no report comes for a while.
func expectQuiet(t *testing.T, out <-chan executor.ProbeResult, d time.Duration) {
	t.Helper()
	select {
	case r := <-out:
		t.Fatalf("unexpected report %+v", r)
	case <-time.After(d):
	}
}

// switchable serves /healthz with 200, 500 or no answer at all, as a test sets it.
type switchable struct {
	mode atomic.Value // "ok", "fail" or "frozen"
	host string
	port int
}

func newSwitchable(t *testing.T) *switchable {
	t.Helper()
	s := &switchable{}
	s.mode.Store("ok")
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch s.mode.Load() {
		case "fail":
			http.Error(w, "failing", http.StatusInternalServerError)
		case "frozen":
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}
	}))
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Start()
	t.Cleanup(func() { close(stop); srv.Close() })
	u, _ := url.Parse(srv.URL)
	s.host = u.Hostname()
	s.port, _ = strconv.Atoi(u.Port())
	return s
}

// probedInstance is an instance of one container "app" with the given probes, not run by
// any runtime (HTTP and TCP probes do not need one).
func probedInstance(id string, probes ...executor.ProbeSpec) executor.InstanceSpec {
	return executor.InstanceSpec{ID: id, Containers: []executor.ContainerSpec{{Name: "app", Image: "none", Probes: probes}}}
}

func startProber(t *testing.T, rt executor.Runtime, spec executor.InstanceSpec, addr string, out chan<- executor.ProbeResult) *executor.Prober {
	t.Helper()
	p, err := executor.StartProber(context.Background(), rt, spec, addr, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// TestProberHTTPReadiness follows an app through ready, answering 500, ready, frozen (its
// checks time out) and ready again.
func TestProberHTTPReadiness(t *testing.T) {
	app := newSwitchable(t)
	probe := httpProbe("http", "", app.port, "/healthz")
	probe.Period, probe.Timeout = 30*time.Millisecond, 150*time.Millisecond
	out := make(chan executor.ProbeResult)
	startProber(t, nil, probedInstance("web-0", probe), app.host, out)

	if r := expectReports(t, out, "web-0", ready(false))[0]; r.Message != "not probed yet" {
		t.Errorf("initial report %+v, want not ready because not probed yet", r)
	}
	expectReports(t, out, "web-0", ready(true))
	steps := []struct {
		mode    string
		want    verdict
		message string
	}{
		{"fail", ready(false), "status 500"},
		{"ok", ready(true), ""},
		{"frozen", ready(false), "timed out after 150ms"},
		{"ok", ready(true), ""},
	}
	for _, s := range steps {
		app.mode.Store(s.mode)
		r := expectReports(t, out, "web-0", s.want)[0]
		if s.message == "" && r.Message != "" || !strings.Contains(r.Message, s.message) {
			t.Errorf("%s: report %+v, want a message containing %q", s.mode, r, s.message)
		}
	}
}

// TestProberTCPLiveness closes the port a liveness probe checks: after FailureThreshold
// failures liveness is reported false once and checks stop; RestartContainer starts them
// over (liveness true again), and the port, still closed, fails them again.
func TestProberTCPLiveness(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	checks := atomic.Int64{}
	go func() { // counts the probe's connections until the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			checks.Add(1)
			c.Close()
		}
	}()
	probe := executor.ProbeSpec{Kind: executor.ProbeLiveness, TCPSocket: &executor.TCPProbe{Port: port},
		Timeout: time.Second, Period: 30 * time.Millisecond, SuccessThreshold: 1, FailureThreshold: 3}
	out := make(chan executor.ProbeResult, 10)
	p := startProber(t, nil, probedInstance("db-0", probe), "127.0.0.1", out)

	deadline := time.Now().Add(probeWait)
	for checks.Load() < 3 { // alive: no report, but checks come
		if time.Now().After(deadline) {
			t.Fatalf("%d checks in %v, want 3", checks.Load(), probeWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectQuiet(t, out, 0)
	ln.Close()
	began := time.Now()
	r := expectReports(t, out, "db-0", alive(false))[0]
	// Three failures a period apart take two periods at least; one would come within one.
	if took := time.Since(began); took < 3*probe.Period/2 {
		t.Errorf("liveness failed %v after the port closed: sooner than 3 checks %v apart", took, probe.Period)
	}
	if !strings.Contains(r.Message, "connection refused") {
		t.Errorf("report %+v, want a message saying why", r)
	}
	expectQuiet(t, out, 5*probe.Period) // no more checks until the container restarts

	p.RestartContainer("app")
	p.RestartContainer("not-a-container") // ignored
	expectReports(t, out, "db-0", alive(true), alive(false))
}

// TestProberStartupGatesOthers runs startup, liveness and readiness exec probes in a Fake
// hello: the startup probe passes first, then readiness; a failing app (SIGUSR1) is not
// ready and not alive; a healthy one again is ready, but liveness waits for the restart.
// A frozen app (SIGSTOP) times its checks out.
func TestProberStartupGatesOthers(t *testing.T) {
	probes := []executor.ProbeSpec{execProbe(executor.ProbeLiveness), execProbe(executor.ProbeReadiness), execProbe(executor.ProbeStartup)}
	fake, spec := startFakeHello(t, "gated-0", probes...)
	out := make(chan executor.ProbeResult)
	p := startProber(t, fake, spec, "127.0.0.1", out)

	expectReports(t, out, spec.ID, ready(false))
	expectReports(t, out, spec.ID, verdict{executor.ProbeStartup, true})
	expectReports(t, out, spec.ID, ready(true))

	signalApp(t, fake, spec.ID, syscall.SIGUSR1)
	for _, r := range expectReports(t, out, spec.ID, ready(false), alive(false)) {
		if !strings.Contains(r.Message, "exited with code 1") {
			t.Errorf("report %+v, want a message naming the exit code", r)
		}
	}
	signalApp(t, fake, spec.ID, syscall.SIGUSR2)
	expectReports(t, out, spec.ID, ready(true))
	expectQuiet(t, out, 5*probes[0].Period) // liveness stays failed until the restart

	p.RestartContainer("app")
	expectReports(t, out, spec.ID, alive(true), ready(false))
	expectReports(t, out, spec.ID, verdict{executor.ProbeStartup, true})
	expectReports(t, out, spec.ID, ready(true))

	signalApp(t, fake, spec.ID, syscall.SIGSTOP)
	for _, r := range expectReports(t, out, spec.ID, ready(false), alive(false)) {
		if !strings.Contains(r.Message, "timed out") {
			t.Errorf("report %+v, want a timeout", r)
		}
	}
	signalApp(t, fake, spec.ID, syscall.SIGCONT)
}

// TestProberNoProbesNoReports checks that containers without probes are never reported.
func TestProberNoProbesNoReports(t *testing.T) {
	out := make(chan executor.ProbeResult, 1)
	startProber(t, nil, probedInstance("plain-0"), "127.0.0.1", out)
	expectQuiet(t, out, 200*time.Millisecond)
}

// TestProberNeverBlocks leaves reports unread: RestartContainer and Stop still return,
// even with a check stuck on a frozen server.
func TestProberNeverBlocks(t *testing.T) {
	app := newSwitchable(t)
	app.mode.Store("frozen")
	probe := httpProbe("http", "", app.port, "/healthz")
	probe.Period, probe.Timeout = 10*time.Millisecond, 5*time.Second
	p, err := executor.StartProber(context.Background(), nil, probedInstance("stuck-0", probe), app.host, make(chan executor.ProbeResult))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the first check is under way and a report waits
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		p.RestartContainer("app")
		p.Stop()
		p.Stop()                  // idempotent
		p.RestartContainer("app") // after Stop: returns at once
	}()
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Fatal("RestartContainer or Stop blocked on an unread channel or a stuck check")
	}
}

// TestProberContextEndsIt cancels the context a Prober was started with: its goroutine
// ends (goleak in TestMain checks that nothing is left) and Stop returns.
func TestProberContextEndsIt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	probe := httpProbe("http", "", 1, "/")
	p, err := executor.StartProber(ctx, nil, probedInstance("ctx-0", probe), "127.0.0.1", make(chan executor.ProbeResult))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	p.Stop()
}

func TestStartProberRejectsInvalidProbes(t *testing.T) {
	probe := httpProbe("http", "", 80, "/")
	probe.Period = 0 // would check in a busy loop
	_, err := executor.StartProber(context.Background(), nil, probedInstance("bad-0", probe), "127.0.0.1", make(chan executor.ProbeResult))
	if !errors.Is(err, executor.ErrInvalidSpec) {
		t.Errorf("StartProber with period 0 = %v, want ErrInvalidSpec", err)
	}
}
