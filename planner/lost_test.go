package planner

import (
	"reflect"
	"testing"
)

func TestLostPlacements(t *testing.T) {
	nodes := []Node{node("a", "z0"), node("b", "z0"), node("c", "z0")}
	cache := dep("cache", 3, ports(6379))
	base := plan(desired(cache, dep("web", 2)), View{Nodes: nodes})

	// api sorts before cache and is placed first: it takes port 6379 on every node.
	taker := plan(desired(dep("api", 3, ports(6379)), cache, dep("web", 2)), View{Nodes: nodes})
	want := []LostPlacement{{Namespace: "default", Workload: "cache", Before: 3, After: 0, Lost: 3,
		Reason: "0/3 nodes are available: 3 node(s) didn't have free ports for the requested ports (host port 6379/TCP held by default/api)."}}
	if got := LostPlacements(base, taker); !reflect.DeepEqual(got, want) {
		t.Errorf("port taken:\ngot  %+v\nwant %+v", got, want)
	}
	// On a live cluster the running cache keeps its port: the newcomer is the one left
	// unplaced, and it had no place to lose.
	live := View{Nodes: nodes, Instances: running(base)}
	if got := LostPlacements(plan(desired(cache, dep("web", 2)), live), plan(desired(dep("api", 3, ports(6379)), cache, dep("web", 2)), live)); len(got) != 0 {
		t.Errorf("running cache: %+v, want nothing lost", got)
	}
	// A taker of one node costs one replica: 2 of 3 stay placed.
	one := plan(desired(dep("api", 1, ports(6379), nodeSelector(LabelHostname, "b")), cache, dep("web", 2)), View{Nodes: nodes})
	if got := LostPlacements(base, one); len(got) != 1 || got[0].Before != 3 || got[0].After != 2 || got[0].Lost != 1 {
		t.Errorf("one node taken: %+v", got)
	}

	for name, next := range map[string]Placement{
		"unchanged":                plan(desired(cache, dep("web", 2)), View{Nodes: nodes}),
		"scaled down":              plan(desired(dep("cache", 1, ports(6379)), dep("web", 2)), View{Nodes: nodes}),
		"removed":                  plan(desired(dep("web", 2)), View{Nodes: nodes}),
		"a new workload unplaced":  plan(desired(cache, dep("web", 2), dep("x-new", 1, ports(6379))), View{Nodes: nodes}),
		"more replicas than nodes": plan(desired(dep("cache", 5, ports(6379)), dep("web", 2)), View{Nodes: nodes}),
	} {
		if got := LostPlacements(base, next); len(got) != 0 {
			t.Errorf("%s: %+v, want nothing lost", name, got)
		}
	}
}
