package source

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"
)

// BenchmarkPollNoChange is one poll cycle against a local file:// repository whose head
// has not moved: an ls-remote and a comparison, no fetch and no load. Besides ns/op it
// reports CPU per cycle: cpu-ms/op for this process plus the git-upload-pack children
// that go-git's file transport starts, and child-cpu-ms/op for the children alone.
func BenchmarkPollNoChange(b *testing.B) {
	up := newUpstream(b)
	files := map[string]string{}
	for i := range 50 {
		files[fmt.Sprintf("apps/app%02d.yaml", i)] = configMap(fmt.Sprintf("app%02d", i), "v1")
	}
	up.Commit("fifty apps", files)
	cfg := DefaultPollerConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := NewPoller(openRepo(b, Source{URL: "file://" + up.Bare, Branch: "main"}, b.TempDir()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, ev, news := p.check(ctx); !news || ev.Desired == nil {
		b.Fatalf("first check: %+v", ev)
	}

	self0, children0 := cpuTimes(b)
	b.ResetTimer()
	for range b.N {
		if _, ev, news := p.check(ctx); news {
			b.Fatalf("unchanged head reported as news: %+v", ev)
		}
	}
	b.StopTimer()
	self1, children1 := cpuTimes(b)
	perOp := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(perOp(self1-self0+children1-children0), "cpu-ms/op")
	b.ReportMetric(perOp(children1-children0), "child-cpu-ms/op")
}

// cpuTimes returns the user+system CPU time of this process and of its waited-for children.
func cpuTimes(b *testing.B) (self, children time.Duration) {
	var ru syscall.Rusage
	total := func(who int) time.Duration {
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total(syscall.RUSAGE_SELF), total(syscall.RUSAGE_CHILDREN)
}
