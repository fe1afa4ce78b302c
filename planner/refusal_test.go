package planner

import (
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// onNode pins a Deployment to one node by hostname.
func onNode(name string) func(*spec.Deployment) { return nodeSelector(LabelHostname, name) }

// udpPort adds a container port over UDP.
func udpPort(p int32) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		c := &d.Spec.Template.Spec.Containers[0]
		c.Ports = append(c.Ports, spec.ContainerPort{ContainerPort: p, Protocol: spec.ProtocolUDP})
	}
}

// An unplaced replica's reason says which port or resource the refusing nodes lack and
// which workloads hold it there, biggest first, naming at most three.
func TestUnplacedReasonNamesWhatIsHeldAndByWhom(t *testing.T) {
	tests := []struct {
		name  string
		nodes []Node
		deps  []*spec.Deployment
		want  string // the reason of z's first replica (z is placed last)
	}{
		{
			name:  "each port held, with its holder",
			nodes: []Node{node("a", "z0"), node("b", "z0")},
			deps: []*spec.Deployment{
				dep("dns", 2, udpPort(53), antiAffinity("dns", LabelHostname)),
				dep("web", 1, ports(8080), onNode("b")),
				dep("z", 1, udpPort(53), ports(8080)),
			},
			want: "0/2 nodes are available: 2 node(s) didn't have free ports for the requested ports " +
				"(host port 53/UDP held by default/dns; host port 8080/TCP held by default/web).",
		},
		{
			name:  "at most three holders named, the most nodes first",
			nodes: []Node{node("a", "z0"), node("b", "z0"), node("c", "z0"), node("d", "z0")},
			deps: []*spec.Deployment{
				dep("h1", 1, ports(9000), onNode("a")),
				dep("h2", 1, ports(9000), onNode("b")),
				dep("h3", 1, ports(9000), onNode("c")),
				dep("h4", 1, ports(9000), onNode("d")),
				dep("z", 1, ports(9000)),
			},
			want: "0/4 nodes are available: 4 node(s) didn't have free ports for the requested ports " +
				"(host port 9000/TCP held by default/h1, default/h2, default/h3 and 1 more).",
		},
		{
			name:  "cpu: what is asked and the biggest users",
			nodes: []Node{small("a", "z0")},
			deps: []*spec.Deployment{
				dep("a-small", 1, requests("100m", "")),
				dep("b-big", 1, requests("500m", "")),
				dep("c-mid", 1, requests("300m", "")),
				dep("d-least", 1, requests("50m", "")),
				dep("z", 1, requests("100m", "")),
			},
			want: "0/1 nodes are available: 1 insufficient cpu " +
				"(less than 100m free on each; used most by default/b-big, default/c-mid, default/a-small and 1 more).",
		},
		{
			name:  "memory",
			nodes: []Node{node("a", "z0")},
			deps: []*spec.Deployment{
				dep("cache", 1, requests("", "1Gi")),
				dep("db", 1, requests("", "6Gi")),
				dep("z", 1, requests("", "1536Mi")),
			},
			want: "0/1 nodes are available: 1 insufficient memory (less than 1536Mi free on each; used most by default/db, default/cache).",
		},
		{
			name:  "only what is on the nodes refusing for that reason counts",
			nodes: []Node{labelled(small("a", "z0"), "disk", "ssd"), small("b", "z0")},
			deps: []*spec.Deployment{
				dep("fill", 1, requests("900m", ""), onNode("a")),
				dep("hog", 1, requests("950m", ""), onNode("b")),
				dep("z", 1, requests("200m", ""), nodeSelector("disk", "ssd")),
			},
			want: "0/2 nodes are available: 1 insufficient cpu (less than 200m free on each; used most by default/fill), " +
				"1 node(s) didn't match node selector.",
		},
		{
			name:  "several reasons, each with its own holders",
			nodes: []Node{small("a", "z0"), small("b", "z0")},
			deps: []*spec.Deployment{
				dep("batch", 1, requests("900m", ""), onNode("a")),
				dep("web", 1, ports(8080), onNode("b")),
				dep("z", 1, requests("200m", ""), ports(8080)),
			},
			want: "0/2 nodes are available: 1 insufficient cpu (less than 200m free on each; used most by default/batch), " +
				"1 node(s) didn't have free ports for the requested ports (host port 8080/TCP held by default/web).",
		},
		{
			name:  "a node too small on its own names nobody",
			nodes: []Node{small("a", "z0")},
			deps:  []*spec.Deployment{dep("z", 1, requests("2", ""))},
			want:  "0/1 nodes are available: 1 insufficient cpu (less than 2 free on each).",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(desired(tt.deps...), View{Nodes: tt.nodes})
			if got := outcome(p, "z", 0); got != "unplaced: "+tt.want {
				t.Errorf("got  %q\nwant %q", got, "unplaced: "+tt.want)
			}
		})
	}
}

// A running instance counts as a holder as a placed one does, and the index of what runs
// where follows instances that lose their place after it was built.
func TestUnplacedReasonCountsRunningHolders(t *testing.T) {
	web := dep("web", 2, ports(8080))
	api := dep("api", 2, ports(8080))
	nodes := []Node{node("a", "z0"), node("b", "z0")}
	// web runs on both nodes: kept, it holds the port, and api (placed after) is refused.
	v := View{Nodes: nodes, Instances: []Instance{runningOn(web, 0, "a"), runningOn(web, 1, "b")}}
	p := plan(desired(api, web), v)
	want := "unplaced: 0/2 nodes are available: 2 node(s) didn't have free ports for the requested ports (host port 8080/TCP held by default/web)."
	if got := outcome(p, "api", 0); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// The same reason from an Explain, which replays the plan.
	e, err := testPlanner.Explain(desired(api, web), v, "default", "api")
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Replicas[1].Summary; "unplaced: "+got != want {
		t.Errorf("explain: %q", got)
	}
}

func TestQuantityTexts(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{milliCPUText(500), "500m"},
		{milliCPUText(2000), "2"},
		{milliCPUText(1500), "1500m"},
		{bytesText(256 << 20), "256Mi"},
		{bytesText(1536 << 20), "1536Mi"},
		{bytesText(2 << 30), "2Gi"},
		{bytesText(3 << 40), "3Ti"},
		{bytesText(1000), "1000"},
		{bytesText(0), "0"},
		{portText(8080 << 2), "8080/TCP"},
		{portText(53<<2 | 1), "53/UDP"},
		{portText(3868<<2 | 2), "3868/SCTP"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
