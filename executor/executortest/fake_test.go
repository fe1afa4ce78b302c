package executortest

import (
	"syscall"
	"testing"

	"github.com/shoalhq/shoal/executor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFakeConformance(t *testing.T) {
	RunConformance(t, Harness{
		New: func(t *testing.T) executor.Runtime {
			f := NewFake(FakeConfig{StateDir: t.TempDir(), Images: map[string]Program{"hello:v1": HelloProgram}})
			t.Cleanup(func() { f.Close() })
			return f
		},
		Reopen: func(t *testing.T, rt executor.Runtime) executor.Runtime { return rt.(*Fake).Reopen() },
		Kill: func(t *testing.T, rt executor.Runtime, c executor.ContainerState, sig syscall.Signal) {
			if err := rt.(*Fake).Kill(c.PID, sig); err != nil {
				t.Fatal(err)
			}
		},
		Image:        "hello:v1",
		MissingImage: "hello:missing",
	})
}
