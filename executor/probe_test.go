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
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
)

// probeServer serves what the HTTP probe tests need on 127.0.0.1. /frozen never answers
// until the client goes away or the test ends.
func probeServer(t *testing.T, tls bool) (host string, port int) {
	t.Helper()
	stop := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "failing", http.StatusInternalServerError) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fail", http.StatusFound) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		// Another host, where nothing listens: following it would fail the probe.
		http.Redirect(w, r, "http://127.0.0.2:1/ok", http.StatusFound)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "web.local" || r.Header.Get("X-Probe") != "1" || r.UserAgent() != "shoal-probe/1" || r.URL.Query().Get("q") != "a b" {
			http.Error(w, "host "+r.Host+", user agent "+r.UserAgent()+", query "+r.URL.RawQuery, http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/frozen", func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.SetKeepAlivesEnabled(false)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() { close(stop); srv.Close() })
	u, _ := url.Parse(srv.URL)
	port, _ = strconv.Atoi(u.Port())
	return u.Hostname(), port
}

func httpProbe(scheme, host string, port int, path string) executor.ProbeSpec {
	return executor.ProbeSpec{Kind: executor.ProbeReadiness, HTTPGet: &executor.HTTPProbe{Scheme: scheme, Host: host, Port: port, Path: path},
		Timeout: 300 * time.Millisecond, Period: time.Second, SuccessThreshold: 1, FailureThreshold: 1}
}

func TestCheckHTTPAndTCP(t *testing.T) {
	host, port := probeServer(t, false)
	_, tlsPort := probeServer(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().(*net.TCPAddr).Port
	defer ln.Close() // the kernel accepts connections into the backlog; nothing needs to Accept
	closed := executortest.FreePort(t)
	tcp := func(port int) executor.ProbeSpec {
		p := httpProbe("", "", 0, "")
		p.HTTPGet, p.TCPSocket = nil, &executor.TCPProbe{Port: port}
		return p
	}
	withHeaders := httpProbe("http", "", port, "/headers?q=a+b")
	withHeaders.HTTPGet.Headers = http.Header{"Host": {"web.local"}, "X-Probe": {"1"}}

	tests := []struct {
		name    string
		probe   executor.ProbeSpec
		addr    string
		wantErr string // "" for success
	}{
		{"200", httpProbe("http", "", port, "/ok"), host, ""},
		{"host in the probe wins over the address", httpProbe("http", host, port, "/ok"), "127.0.0.9", ""},
		{"path without a slash", httpProbe("http", "", port, "ok"), host, ""},
		{"500", httpProbe("http", "", port, "/fail"), host, "status 500"},
		{"404", httpProbe("http", "", port, "/nope"), host, "status 404"},
		{"redirect on the same host is followed", httpProbe("http", "", port, "/moved"), host, "status 500"},
		{"redirect to another host is not followed and passes", httpProbe("http", "", port, "/away"), host, ""},
		{"headers, Host, user agent and query are sent", withHeaders, host, ""},
		{"frozen server times out", httpProbe("http", "", port, "/frozen"), host, "timed out after 300ms"},
		{"nothing listening", httpProbe("http", "", closed, "/ok"), host, "connection refused"},
		{"https without verifying the certificate", httpProbe("https", "", tlsPort, "/ok"), host, ""},
		{"tcp open", tcp(open), "127.0.0.1", ""},
		{"tcp closed", tcp(closed), "127.0.0.1", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			began := time.Now()
			err := executor.Check(context.Background(), tt.probe, tt.addr, nil, "", "")
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check = %v, want error containing %q", err, tt.wantErr)
			}
			if took := time.Since(began); took > 2*time.Second {
				t.Errorf("Check took %v with a timeout of %v", took, tt.probe.Timeout)
			}
		})
	}
	frozen := httpProbe("http", "", port, "/frozen")
	if err := executor.Check(context.Background(), frozen, host, nil, "", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Check of a frozen server = %v, want an error wrapping DeadlineExceeded", err)
	}
}

// TestCheckExec runs exec probes in a Fake's hello container: the exit code decides, a
// frozen app times the check out, and a missing runtime or container is an error.
func TestCheckExec(t *testing.T) {
	fake, spec := startFakeHello(t, "exec-0")
	probe := execProbe(executor.ProbeLiveness)
	check := func() error { return executor.Check(context.Background(), probe, "", fake, spec.ID, "app") }
	if err := check(); err != nil {
		t.Fatalf("healthy app: %v", err)
	}
	signalApp(t, fake, spec.ID, syscall.SIGUSR1)
	if err := check(); err == nil || !strings.Contains(err.Error(), "exited with code 1") {
		t.Errorf("failing app: %v, want an error naming exit code 1", err)
	}
	signalApp(t, fake, spec.ID, syscall.SIGSTOP)
	if err := check(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("frozen app: %v, want a timeout", err)
	}
	signalApp(t, fake, spec.ID, syscall.SIGCONT)
	if err := executor.Check(context.Background(), probe, "", fake, spec.ID, "nope"); !errors.Is(err, executor.ErrNotFound) {
		t.Errorf("unknown container: %v, want ErrNotFound", err)
	}
	if err := executor.Check(context.Background(), probe, "", nil, spec.ID, "app"); err == nil {
		t.Error("exec probe without a runtime passed")
	}
}

// execProbe runs the hello image's health check every 30ms.
func execProbe(kind executor.ProbeKind) executor.ProbeSpec {
	return executor.ProbeSpec{Kind: kind, Exec: &executor.ExecProbe{Command: []string{"/hello", "-check", "http://127.0.0.1/healthz"}},
		Timeout: 200 * time.Millisecond, Period: 30 * time.Millisecond, SuccessThreshold: 1, FailureThreshold: 1}
}

// startFakeHello runs one hello instance in a Fake that is closed when the test ends.
func startFakeHello(t *testing.T, id string, probes ...executor.ProbeSpec) (*executortest.Fake, executor.InstanceSpec) {
	t.Helper()
	fake := executortest.NewFake(executortest.FakeConfig{StateDir: t.TempDir(), Images: map[string]executortest.Program{"hello:v1": executortest.HelloProgram}})
	t.Cleanup(func() { fake.Close() })
	spec := executor.InstanceSpec{ID: id, Namespace: "default", Workload: "hello", SpecHash: "h", GracePeriod: time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: "hello:v1", Probes: probes}}}
	if err := fake.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	return fake, spec
}

// signalApp sends sig to the app container of a Fake instance. HelloProgram handles
// pending signals before any later exec, so the next check sees their effect.
func signalApp(t *testing.T, fake *executortest.Fake, id string, sig syscall.Signal) {
	t.Helper()
	got, err := fake.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range got {
		if inst.ID == id {
			if err := fake.Kill(inst.Containers[0].PID, sig); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no instance %s", id)
}
