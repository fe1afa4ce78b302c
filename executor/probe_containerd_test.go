package executor_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
	"github.com/shoalhq/shoal/spec"
)

// TestResolvConf starts the hello app through Resolve with and without WithResolvConf:
// the container reads the given content at /etc/resolv.conf, or else the host's.
func TestResolvConf(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	hostConf, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	ours := []byte("nameserver 10.77.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
	tests := []struct {
		id   string
		opts []executor.ResolveOption
		want []byte
	}{
		{"dns-0", []executor.ResolveOption{executor.WithResolvConf(ours)}, ours},
		{"host-dns-0", nil, hostConf},
	}
	for _, tt := range tests {
		port := executortest.FreePort(t)
		d := &spec.Deployment{
			Metadata: spec.ObjectMeta{Name: "hello", Namespace: "shop"},
			Spec: spec.DeploymentSpec{Template: spec.PodTemplate{Spec: spec.PodSpec{Containers: []spec.Container{{
				Name: "app", Image: hello[0],
				Env: []spec.EnvVar{{Name: "LISTEN", Value: fmt.Sprintf("127.0.0.1:%d", port)}},
			}}}}},
		}
		inst, err := executor.Resolve(&spec.Set{}, d, tt.id, "node-a", "0123abcd", tt.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/file?path=/etc/resolv.conf", port)); got != string(tt.want) {
			t.Errorf("%s: the container's /etc/resolv.conf is %q, want %q", tt.id, got, tt.want)
		}
	}
	instanceDir := filepath.Join(stateDirOf(t, rt), "instances", "dns-0")
	if err := rt.Stop(ctx, "dns-0", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(instanceDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stop left %s (%v)", instanceDir, err)
	}
}

// TestProbesOnContainerd probes a real hello container as the agent would: an exec
// liveness probe (the image's own -check, run in the container) and an HTTP readiness
// probe. A failing app (SIGUSR1) is reported not ready and not alive; restarting the
// container and the Prober's probes of it brings both back; a frozen app (SIGSTOP) is
// caught by the checks' timeouts.
func TestProbesOnContainerd(t *testing.T) {
	_, hello := env(t)
	rt := newRuntime(t)
	ctx := context.Background()
	port := executortest.FreePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	timing := func(p executor.ProbeSpec) executor.ProbeSpec {
		p.Timeout, p.Period, p.SuccessThreshold, p.FailureThreshold = time.Second, 100*time.Millisecond, 1, 2
		return p
	}
	inst := executor.InstanceSpec{ID: "probed-0", Namespace: "default", Workload: "probed", SpecHash: "h", GracePeriod: 5 * time.Second,
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0],
			Env: []executor.EnvVar{{Name: "LISTEN", Value: listen}},
			Probes: []executor.ProbeSpec{
				timing(executor.ProbeSpec{Kind: executor.ProbeLiveness,
					Exec: &executor.ExecProbe{Command: []string{"/hello", "-check", "http://" + listen + "/healthz"}}}),
				timing(executor.ProbeSpec{Kind: executor.ProbeReadiness,
					HTTPGet: &executor.HTTPProbe{Scheme: "http", Port: port, Path: "/readyz"}}),
			}}}}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	out := make(chan executor.ProbeResult)
	p := startProber(t, rt, inst, "127.0.0.1", out)
	expectReports(t, out, inst.ID, ready(false))
	expectReports(t, out, inst.ID, ready(true))

	app := onlyContainer(t, rt)
	killPID(t, app.PID, syscall.SIGUSR1)
	expectReports(t, out, inst.ID, ready(false), alive(false))

	if err := rt.Restart(ctx, inst.ID, "app"); err != nil {
		t.Fatal(err)
	}
	p.RestartContainer("app")
	expectReports(t, out, inst.ID, alive(true), ready(true)) // in either order: an exec probe may take longer

	app = onlyContainer(t, rt)
	killPID(t, app.PID, syscall.SIGSTOP)
	defer killPID(t, app.PID, syscall.SIGCONT)
	for _, r := range expectReports(t, out, inst.ID, ready(false), alive(false)) {
		if r.Kind == executor.ProbeReadiness && !strings.Contains(r.Message, "timed out") {
			t.Errorf("readiness of a frozen app: %+v, want a timeout", r)
		}
	}
}
