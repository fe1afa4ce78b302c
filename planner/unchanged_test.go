package planner

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// TestPlanUnchangedOnRandomInputs pins the placements of random clusters, fresh, fully
// running and messy (duplicates, outdated, failed, extra slots), to digests recorded from
// the planner before its speed-ups: an optimisation must give byte-identical plans.
func TestPlanUnchangedOnRandomInputs(t *testing.T) {
	var b strings.Builder
	for seed := range int64(propertySeeds) {
		rng := rand.New(rand.NewSource(seed))
		nodes := randomNodes(rng, 5+rng.Intn(20)+rng.Intn(2)*rng.Intn(300))
		d := randomDesired(rng, allConstraints)
		fresh := plan(d, View{Nodes: nodes})
		all := plan(d, View{Nodes: nodes, Instances: running(fresh)})
		messy := plan(d, messyView(rng, nodes, fresh))
		fmt.Fprintf(&b, "%d", seed)
		for _, p := range []Placement{fresh, all, messy} {
			fmt.Fprintf(&b, " %x", sha256.Sum256(mustJSON(t, p)))
		}
		b.WriteString("\n")
	}
	golden(t, "random-plans.golden", []byte(b.String()))
}
