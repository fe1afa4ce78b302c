package agent

import (
	"math/rand"
	"slices"
	"strconv"
	"testing"

	"github.com/shoalhq/shoal/planner"
)

// mergeSorted is a stable sort of a then b: ties keep a's first.
func TestMergeSortedIsStableSort(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	draw := func(n int) []planner.Instance {
		out := make([]planner.Instance, n)
		for i := range out {
			out[i] = planner.Instance{Namespace: "ns", Workload: "w" + strconv.Itoa(rng.Intn(3)), ID: strconv.Itoa(rng.Intn(10)),
				Node: "n" + strconv.Itoa(rng.Intn(2)), SpecHash: strconv.Itoa(i)}
		}
		slices.SortStableFunc(out, comparePlanned)
		return out
	}
	for range 500 {
		a, b := draw(rng.Intn(30)), draw(rng.Intn(5))
		want := slices.Concat(a, b)
		slices.SortStableFunc(want, comparePlanned)
		if got := mergeSorted(a, b); !slices.Equal(got, want) {
			t.Fatalf("mergeSorted(%v, %v) = %v, want %v", a, b, got, want)
		}
	}
}
