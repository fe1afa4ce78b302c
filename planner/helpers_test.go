package planner

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

var testPlanner = New(nil)

func plan(d spec.Desired, v View) Placement { return testPlanner.Plan(d, v) }

// desired wraps deployments (and other objects) in a Desired at a fixed revision.
func desired(deps ...*spec.Deployment) spec.Desired {
	set := &spec.Set{Deployments: slices.Clone(deps)}
	slices.SortFunc(set.Deployments, func(a, b *spec.Deployment) int {
		return strings.Compare(a.Metadata.Namespace+"/"+a.Metadata.Name, b.Metadata.Namespace+"/"+b.Metadata.Name)
	})
	return spec.Desired{Revision: spec.Revision{Commit: "0123456789abcdef0123456789abcdef01234567"}, Objects: set}
}

// dep builds a Deployment "name" in namespace default, labelled app=name, with one container.
func dep(name string, replicas int32, mods ...func(*spec.Deployment)) *spec.Deployment {
	d := &spec.Deployment{
		TypeMeta: spec.TypeMeta{APIVersion: spec.APIVersionApps, Kind: spec.KindDeployment},
		Metadata: spec.ObjectMeta{Name: name, Namespace: spec.DefaultNamespace},
		Spec: spec.DeploymentSpec{
			Replicas: &replicas,
			Selector: &spec.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: spec.PodTemplate{
				Metadata: spec.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:     spec.PodSpec{Containers: []spec.Container{{Name: "main", Image: "registry.local/" + name + ":1"}}},
			},
		},
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

func inNamespace(ns string) func(*spec.Deployment) {
	return func(d *spec.Deployment) { d.Metadata.Namespace = ns }
}

func requests(cpu, mem string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		req := map[string]spec.Quantity{}
		if cpu != "" {
			req[spec.ResourceCPU] = spec.MustQuantity(cpu)
		}
		if mem != "" {
			req[spec.ResourceMemory] = spec.MustQuantity(mem)
		}
		d.Spec.Template.Spec.Containers[0].Resources.Requests = req
	}
}

func nodeSelector(kv ...string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Spec.Template.Spec.NodeSelector = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			d.Spec.Template.Spec.NodeSelector[kv[i]] = kv[i+1]
		}
	}
}

func affinity(d *spec.Deployment) *spec.Affinity {
	if d.Spec.Template.Spec.Affinity == nil {
		d.Spec.Template.Spec.Affinity = &spec.Affinity{}
	}
	return d.Spec.Template.Spec.Affinity
}

func requiredNodeAffinity(reqs ...spec.LabelSelectorRequirement) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		affinity(d).NodeAffinity = &spec.NodeAffinity{Required: &spec.NodeSelector{
			NodeSelectorTerms: []spec.NodeSelectorTerm{{MatchExpressions: reqs}},
		}}
	}
}

func preferredNodeAffinity(weight int32, reqs ...spec.LabelSelectorRequirement) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		a := affinity(d)
		if a.NodeAffinity == nil {
			a.NodeAffinity = &spec.NodeAffinity{}
		}
		a.NodeAffinity.Preferred = append(a.NodeAffinity.Preferred, spec.PreferredSchedulingTerm{
			Weight: weight, Preference: spec.NodeSelectorTerm{MatchExpressions: reqs},
		})
	}
}

func term(app, topologyKey string) spec.PodAffinityTerm {
	return spec.PodAffinityTerm{
		LabelSelector: &spec.LabelSelector{MatchLabels: map[string]string{"app": app}},
		TopologyKey:   topologyKey,
	}
}

// antiAffinity keeps the workload's instances away from instances of app by topologyKey.
func antiAffinity(app, topologyKey string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		a := affinity(d)
		if a.PodAntiAffinity == nil {
			a.PodAntiAffinity = &spec.PodAffinity{}
		}
		a.PodAntiAffinity.Required = append(a.PodAntiAffinity.Required, term(app, topologyKey))
	}
}

// podAffinity draws the workload's instances to instances of app by topologyKey.
func podAffinity(app, topologyKey string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		a := affinity(d)
		if a.PodAffinity == nil {
			a.PodAffinity = &spec.PodAffinity{}
		}
		a.PodAffinity.Required = append(a.PodAffinity.Required, term(app, topologyKey))
	}
}

func preferredPodAffinity(weight int32, app, topologyKey string, anti bool) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		a := affinity(d)
		target := &a.PodAffinity
		if anti {
			target = &a.PodAntiAffinity
		}
		if *target == nil {
			*target = &spec.PodAffinity{}
		}
		(*target).Preferred = append((*target).Preferred, spec.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: term(app, topologyKey)})
	}
}

func spread(topologyKey string, maxSkew int32, when string) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		d.Spec.Template.Spec.TopologySpreadConstraints = append(d.Spec.Template.Spec.TopologySpreadConstraints, spec.TopologySpreadConstraint{
			MaxSkew: maxSkew, TopologyKey: topologyKey, WhenUnsatisfiable: when,
			LabelSelector: &spec.LabelSelector{MatchLabels: map[string]string{"app": d.Metadata.Name}},
		})
	}
}

func ports(ps ...int32) func(*spec.Deployment) {
	return func(d *spec.Deployment) {
		for _, p := range ps {
			d.Spec.Template.Spec.Containers[0].Ports = append(d.Spec.Template.Spec.Containers[0].Ports, spec.ContainerPort{ContainerPort: p})
		}
	}
}

func image(img string) func(*spec.Deployment) {
	return func(d *spec.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img }
}

const gi = 1 << 30

// node builds an alive node with 4 cores and 8 GiB in the given zone, plus extra labels.
func node(name, zone string, kv ...string) Node {
	labels := map[string]string{LabelHostname: name, LabelZone: zone}
	for i := 0; i < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	return Node{Name: name, Labels: labels, Allocatable: Resources{MilliCPU: 4000, MemoryBytes: 8 * gi}, Alive: true}
}

// cluster builds n nodes named n000… spread over zones z0…z(zones-1).
func cluster(n, zones int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = node(nodeName(i), "z"+strconv.Itoa(i%zones))
	}
	return out
}

func nodeName(i int) string { return "n" + strconv.Itoa(1000 + i)[1:] }

// running reports every assignment as a running, ready instance: the view after the agent
// carried the plan out.
func running(p Placement) []Instance {
	out := make([]Instance, len(p.Assignments))
	for i, a := range p.Assignments {
		out[i] = Instance{ID: a.InstanceID, Namespace: a.Namespace, Workload: a.Workload, Node: a.Node, SpecHash: a.SpecHash, Ready: true, Running: true}
	}
	return out
}

// nodesOf maps instance IDs to their nodes.
func nodesOf(p Placement) map[string]string {
	out := make(map[string]string, len(p.Assignments))
	for _, a := range p.Assignments {
		out[a.Namespace+"/"+a.InstanceID] = a.Node
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./planner -run %s -update to create it): %v", t.Name(), err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if the change is intended)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func spreadConstraint(maxSkew int32) spec.TopologySpreadConstraint {
	return spec.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: LabelZone, WhenUnsatisfiable: spec.DoNotSchedule}
}
