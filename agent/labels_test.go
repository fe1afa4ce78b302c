package agent

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// A node carries the labels the kubelet sets, so that the common nodeSelectors on the OS
// and architecture, GA or beta, place on it; one that asks for another OS does not.
func TestWellKnownLabelsPlace(t *testing.T) {
	manifest := func(name, key, value string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      nodeSelector: {%s: %s}
      containers: [{name: main, image: "hello:v1"}]
`, name, name, name, key, value)
	}
	files := fstest.MapFS{
		"os.yaml":        {Data: []byte(manifest("os", "kubernetes.io/os", runtime.GOOS))},
		"beta-arch.yaml": {Data: []byte(manifest("beta-arch", "beta.kubernetes.io/arch", runtime.GOARCH))},
		"windows.yaml":   {Data: []byte(manifest("windows", "kubernetes.io/os", "windows"))},
	}
	set, diags := spec.Load(files, spec.DefaultLoadOptions())
	if set == nil {
		t.Fatal(diags.Error())
	}
	cfg := DefaultConfig("node-a")
	cfg.Logger = slog.New(slog.DiscardHandler)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCore(cfg, false, DNSConfig{})
	rev := spec.Revision{Commit: "rev1"}
	c.Step(revisionEvent{source.Event{Revision: rev, Desired: &spec.Desired{Revision: rev, Objects: set}}}, now)
	c.Step(listingEvent{began: now}, now)
	started := map[string]bool{}
	for _, s := range c.Ready().starts {
		started[s.Workload] = true
	}
	if !started["os"] || !started["beta-arch"] || started["windows"] {
		t.Errorf("started %v; want os and beta-arch, not windows", started)
	}
}
