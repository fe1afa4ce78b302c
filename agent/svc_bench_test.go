package agent

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"
	"testing/fstest"

	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/source"
	"github.com/shoalhq/shoal/spec"
)

// BenchmarkCoreProbeVerdictWithServices is BenchmarkCoreProbeVerdict with a Service for
// each of the 2,000 Deployments, DNS and the pod network on: a verdict changes one
// Service's records, and the others' must cost nothing.
func BenchmarkCoreProbeVerdictWithServices(b *testing.B) {
	files := fstest.MapFS{}
	for i := range benchWorkloads {
		service := fmt.Sprintf("---\napiVersion: v1\nkind: Service\nmetadata: {name: app-%d}\nspec:\n  selector: {app: app-%d}\n  ports: [{port: 80}]\n", i, i)
		files["app-"+strconv.Itoa(i)+".yaml"] = &fstest.MapFile{Data: append(benchManifest(i, "registry.local/app:1"), service...)}
	}
	set, diags := spec.Load(files, spec.LoadOptions{})
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	bc := newBenchCluster(b)
	cfg := bc.c.cfg
	cfg.Network = DefaultNetwork()
	bc.c = newCore(cfg, true, DNSConfig{Server: nopDNS{}, Domain: "cluster.local", Nameserver: netip.MustParseAddr("10.0.0.1")})
	rev := &spec.Desired{Revision: spec.Revision{Commit: "9000000000000000000000000000000000000000"}, Objects: set}
	bc.step(revisionEvent{source.Event{Revision: rev.Revision, Desired: rev}})
	bc.step(listingEvent{began: bc.now})
	bc.step(viewEvent{bc.views[0]})
	bc.c.Ready()
	bc.c.Advance()
	id := bc.local[0]
	bc.loop(b, func(i int) {
		bc.cycle(probeEvent{executor.ProbeResult{InstanceID: id, Container: "main", Kind: executor.ProbeReadiness, Healthy: i%2 == 0}})
	})
}
