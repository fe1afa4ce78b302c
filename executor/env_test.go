package executor_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/containerdtest"
	"go.uber.org/goleak"
)

// The tests that need containerd share one private daemon, one registry on 127.0.0.1 and
// the hello images, made on first use; the pure tests need none of it.
var shared struct {
	once     sync.Once
	err      error
	daemon   *containerdtest.Daemon
	registry *imagebuild.Registry
	imageDir string
	hello    []string // hello:v1, hello:v2
}

// namespaces gives each runtime its own containerd namespace, so tests cannot see each
// other's containers.
var namespaceSeq atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.registry != nil {
		shared.registry.Close()
	}
	if shared.daemon != nil {
		if err := shared.daemon.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "containerd cleanup:", err)
			code = 1
		}
	}
	os.RemoveAll(shared.imageDir)
	remote.DefaultTransport.(*http.Transport).CloseIdleConnections() // left by the image pushes
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// env returns the shared daemon and images, failing the test if they cannot be had; under
// -short it skips the test.
func env(t testing.TB) (*containerdtest.Daemon, []string) {
	t.Helper()
	containerdtest.SkipShort(t)
	shared.once.Do(func() {
		if shared.daemon, shared.err = containerdtest.Start(); shared.err != nil {
			return
		}
		if shared.registry, shared.err = imagebuild.StartRegistry("127.0.0.1:0"); shared.err != nil {
			return
		}
		if shared.imageDir, shared.err = os.MkdirTemp("", "hello-image-"); shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		shared.hello, shared.err = imagebuild.BuildHello(ctx, shared.imageDir, shared.registry.Addr)
	})
	if shared.err != nil {
		t.Fatalf("test environment: %v", shared.err)
	}
	return shared.daemon, shared.hello
}

// grpcHealth is the image of examples/grpchealth, built on first use.
var grpcHealth struct {
	once sync.Once
	ref  string
	err  error
}

// grpcHealthImage returns the gRPC health server's image, building it on first use.
func grpcHealthImage(t testing.TB) string {
	t.Helper()
	env(t)
	grpcHealth.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		grpcHealth.ref, grpcHealth.err = imagebuild.BuildGRPCHealth(ctx, shared.imageDir, shared.registry.Addr)
	})
	if grpcHealth.err != nil {
		t.Fatalf("grpchealth image: %v", grpcHealth.err)
	}
	return grpcHealth.ref
}

// newRuntime connects a Containerd runtime to the shared daemon in a namespace of its own.
// When the test ends it stops whatever the test left running and closes the runtime.
func newRuntime(t testing.TB, opts ...executor.Option) *executor.Containerd {
	t.Helper()
	d, _ := env(t)
	ns := fmt.Sprintf("t%d", namespaceSeq.Add(1))
	return openRuntime(t, append([]executor.Option{
		executor.WithSocket(d.Socket),
		executor.WithNamespace(ns),
		executor.WithRuncRoot(d.RuncRoot),
		executor.WithStateDir(d.StateDir + "/" + ns),
	}, opts...)...)
}

// openRuntime opens a runtime with exactly these options (Reopen passes the same ones again).
func openRuntime(t testing.TB, opts ...executor.Option) *executor.Containerd {
	t.Helper()
	rt, err := executor.NewContainerd(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	runtimeOptions.Store(rt, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if left, err := rt.List(ctx); err == nil {
			for _, inst := range left {
				if err := rt.Stop(ctx, inst.ID, 0); err != nil {
					t.Errorf("cleanup: stop %s: %v", inst.ID, err)
				}
			}
		}
		if err := rt.Close(); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	return rt
}

// runtimeOptions remembers how each runtime was opened, for Reopen.
var runtimeOptions sync.Map
