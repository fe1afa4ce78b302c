package executor_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/runc/options"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/executortest"
)

const benchContainers = 10

// BenchmarkStart10 creates and starts 10 hello containers per op, one after another and
// with as many at once as there are CPUs: straight through the containerd client (the
// floor the agent is compared against), and through Runtime.Start, which adds label
// lookups, volumes, image checks and log files. Removal is not timed.
//
//	go test ./executor -run '^$' -bench Start10 -benchtime 3x -count 3
func BenchmarkStart10(b *testing.B) {
	_, hello := env(b)
	for _, parallel := range []int{1, runtime.NumCPU()} {
		b.Run(fmt.Sprintf("client/parallel=%d", parallel), func(b *testing.B) {
			rt := newRuntime(b)
			client, ctx := rt.Client(), namespaces.WithNamespace(context.Background(), rt.Namespace())
			if err := rt.EnsureImage(ctx, hello[0], executor.PullIfNotPresent); err != nil {
				b.Fatal(err)
			}
			img, err := client.GetImage(ctx, hello[0])
			if err != nil {
				b.Fatal(err)
			}
			d, _ := env(b)
			runc := &options.Options{Root: d.RuncRoot}
			logDir := b.TempDir()
			for i := 0; i < b.N; i++ {
				cts := make([]containerd.Container, benchContainers)
				each(b, parallel, func(j int) error {
					id := fmt.Sprintf("bench-%d-%d", i, j)
					ct, err := client.NewContainer(ctx, id,
						containerd.WithImage(img),
						containerd.WithSnapshotter("overlayfs"),
						containerd.WithNewSnapshot(id, img),
						containerd.WithRuntime(plugin.RuntimeRuncV2, runc),
						containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithHostNamespace(specs.NetworkNamespace),
							oci.WithEnv([]string{"LISTEN=127.0.0.1:0"})))
					if err != nil {
						return err
					}
					cts[j] = ct
					task, err := ct.NewTask(ctx, cio.LogFile(filepath.Join(logDir, id+".log")),
						func(_ context.Context, _ *containerd.Client, ti *containerd.TaskInfo) error {
							ti.Options = runc
							return nil
						})
					if err != nil {
						return err
					}
					return task.Start(ctx)
				})
				b.StopTimer()
				each(b, parallel, func(j int) error {
					task, err := cts[j].Task(ctx, nil)
					if err != nil {
						return err
					}
					wait, _ := task.Wait(ctx)
					task.Kill(ctx, syscall.SIGKILL)
					<-wait
					task.Delete(ctx)
					return cts[j].Delete(ctx, containerd.WithSnapshotCleanup)
				})
				b.StartTimer()
			}
		})
		b.Run(fmt.Sprintf("runtime/parallel=%d", parallel), func(b *testing.B) {
			rt := newRuntime(b)
			ctx := context.Background()
			if err := rt.EnsureImage(ctx, hello[0], executor.PullIfNotPresent); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < b.N; i++ {
				ids := make([]string, benchContainers)
				each(b, parallel, func(j int) error {
					ids[j] = fmt.Sprintf("bench-%d-%d", i, j)
					return rt.Start(ctx, executor.InstanceSpec{
						ID: ids[j], Namespace: "default", Workload: "bench", SpecHash: "h",
						Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0],
							Env: []executor.EnvVar{{Name: "LISTEN", Value: "127.0.0.1:0"}}}},
					})
				})
				b.StopTimer()
				each(b, parallel, func(j int) error { return rt.Stop(ctx, ids[j], 0) })
				b.StartTimer()
			}
		})
	}
}

// each runs f(0..benchContainers-1) with at most parallel calls at once.
func each(b *testing.B, parallel int, f func(int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make([]error, benchContainers)
	sem := make(chan struct{}, parallel)
	for j := range benchContainers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[j] = f(j)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecProbe runs one exec probe check per op in a running hello container: the
// image's -check GETting the app's /healthz, through Runtime.Exec (create, start, wait
// and delete a process in the container). It says how many exec probes a node can run
// per second.
//
//	go test ./executor -run '^$' -bench ExecProbe -benchtime 50x -count 3
func BenchmarkExecProbe(b *testing.B) {
	_, hello := env(b)
	rt := newRuntime(b)
	ctx := context.Background()
	listen := fmt.Sprintf("127.0.0.1:%d", executortest.FreePort(b))
	inst := executor.InstanceSpec{ID: "exec-bench-0", Namespace: "default", Workload: "bench", SpecHash: "h",
		Containers: []executor.ContainerSpec{{Name: "app", Image: hello[0], Env: []executor.EnvVar{{Name: "LISTEN", Value: listen}}}}}
	if err := rt.Start(ctx, inst); err != nil {
		b.Fatal(err)
	}
	probe := executor.ProbeSpec{Kind: executor.ProbeLiveness, Timeout: 10 * time.Second,
		Exec: &executor.ExecProbe{Command: []string{"/hello", "-check", "http://" + listen + "/healthz"}}}
	deadline := time.Now().Add(30 * time.Second)
	for executor.Check(ctx, probe, "", rt, inst.ID, "app") != nil { // the app may still be starting
		if time.Now().After(deadline) {
			b.Fatal("the app never passed its check")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := executor.Check(ctx, probe, "", rt, inst.ID, "app"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPProbe runs one HTTP probe check per op against a server on 127.0.0.1: the
// cost of a check on the agent's side, a fresh connection each time.
//
//	go test ./executor -run '^$' -bench HTTPProbe -count 3
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	probe := executor.ProbeSpec{Kind: executor.ProbeReadiness, Timeout: time.Second,
		HTTPGet: &executor.HTTPProbe{Scheme: "http", Port: port, Path: "/healthz"}}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := executor.Check(ctx, probe, u.Hostname(), nil, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}
