package spec

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// selectionDeployment is a Deployment "name" in namespace ns whose pods carry labels
// (YAML flow mapping) and declare ports (YAML flow list).
func selectionDeployment(ns, name, labels, ports string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
spec:
  selector:
    matchLabels: %s
  template:
    metadata:
      labels: %s
    spec:
      containers:
      - name: app
        image: nginx:1.25
        ports: %s
`, name, ns, labels, labels, ports)
}

// selectionService is a Service "name" in namespace ns with a selector (YAML flow
// mapping) and ports (YAML flow list), each on its own line:
//
//	line 7: spec.selector; line 9 on: spec.ports[0], [1], …
func selectionService(ns, name, selector string, ports ...string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
spec:
  selector: %s
  ports:
  - %s
`, name, ns, selector, strings.Join(ports, "\n  - "))
}

func TestServiceSelectionWarnings(t *testing.T) {
	web := selectionDeployment("default", "web", "{app: web, tier: front}", "[{name: http, containerPort: 8080}, {name: dns, containerPort: 53}]")
	tests := []struct {
		name    string
		service string
		extra   string
		want    []string
	}{
		{"named targetPort found", selectionService("default", "web", "{app: web}", "{port: 80, targetPort: http}"), "", nil},
		{"numeric targetPort is not checked", selectionService("default", "web", "{app: web}", "{port: 80, targetPort: 9999}"), "", nil},
		{"named targetPort not found", selectionService("default", "web", "{app: web}", "{name: a, port: 80, targetPort: http}", "{name: b, port: 81, targetPort: htp}"), "", []string{
			`svc.yaml:10: spec.ports[1].targetPort: warning: targetPort "htp" names no containerPort of the pods this Service selects (web)`,
		}},
		{"named targetPort of another protocol", selectionService("default", "web", "{app: web}", "{port: 53, protocol: UDP, targetPort: dns}"), "", []string{
			`svc.yaml:9: spec.ports[0].targetPort: warning: targetPort "dns" names no UDP containerPort of the pods this Service selects (web): their port "dns" is TCP`,
		}},
		{"one selected Deployment has the port", selectionService("default", "web", "{tier: front}", "{port: 80, targetPort: metrics}"),
			selectionDeployment("default", "sidecar", "{app: side, tier: front}", "[{name: metrics, containerPort: 9090}]"), nil},
		{"selector matches nothing", selectionService("default", "web", "{app: wbe}", "{port: 80, targetPort: http}"), "", []string{
			`svc.yaml:7: spec.selector: warning: selector app=wbe matches no Deployment's pods in namespace default: the Service has no endpoints`,
		}},
		{"selector matches only part of the labels", selectionService("default", "web", "{app: web, tier: back}", "{port: 80}"), "", []string{
			`svc.yaml:7: spec.selector: warning: selector app=web,tier=back matches no Deployment's pods in namespace default: the Service has no endpoints`,
		}},
		{"selector matches pods of another namespace only", selectionService("shop", "web", "{app: web}", "{port: 80}"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", []string{
			`svc.yaml:7: spec.selector: warning: selector app=web matches no Deployment's pods in namespace shop: the Service has no endpoints`,
		}},
		{"many Deployments are named by three", selectionService("default", "web", "{tier: front}", "{port: 80, targetPort: admin}"),
			selectionDeployment("default", "a", "{app: a, tier: front}", "[]") + "---\n" +
				selectionDeployment("default", "b", "{app: b, tier: front}", "[]") + "---\n" +
				selectionDeployment("default", "c", "{app: c, tier: front}", "[]") + "---\n" +
				selectionDeployment("default", "d", "{app: d, tier: front}", "[]"), []string{
				`svc.yaml:9: spec.ports[0].targetPort: warning: targetPort "admin" names no containerPort of the pods this Service selects (a, b, c and 2 more)`,
			}},
		{"no selector: only the existing warning", strings.Replace(selectionService("default", "web", "{}", "{port: 80, targetPort: nothing}"), "  selector: {}\n", "", 1), "", []string{
			`svc.yaml:6: spec.selector: warning: not set: Shoal manages no endpoints for a Service without a selector`,
		}},
		{"a revision with errors gets no selection warnings", selectionService("default", "web", "{app: wbe}", "{port: 99999, targetPort: htp}"), "", []string{
			`svc.yaml:9: spec.ports[0].port: must be between 1 and 65535, inclusive, got 99999`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"svc.yaml": {Data: []byte(tt.service)}, "web.yaml": {Data: []byte(web)}}
			if tt.extra != "" {
				fsys["extra.yaml"] = &fstest.MapFile{Data: []byte(tt.extra)}
			}
			_, diags := Load(fsys, LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestValidateBuiltSetWarnsAboutSelection(t *testing.T) {
	d := &Deployment{
		Metadata: ObjectMeta{Name: "web"},
		Spec: DeploymentSpec{
			Selector: &LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: PodTemplate{
				Metadata: ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: PodSpec{Containers: []Container{{Name: "web", Image: "nginx:1.25",
					Ports: []ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			},
		},
	}
	s := &Service{
		Metadata: ObjectMeta{Name: "web"},
		Spec: ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []ServicePort{{Port: 80, TargetPort: ptr(FromString("web"))}}},
		Source: Source{File: "gen/svc.yaml", Line: 4},
	}
	SetDefaults(d)
	SetDefaults(s)
	set := &Set{Deployments: []*Deployment{d}, Services: []*Service{s}}
	want := []string{`gen/svc.yaml:4: spec.ports[0].targetPort: warning: targetPort "web" names no containerPort of the pods this Service selects (web)`}
	if got := diagStrings(Validate(set)); !slices.Equal(got, want) {
		t.Fatalf("Validate = %q, want %q", got, want)
	}
}

// A revision whose every Service is a candidate for every Deployment would cost their
// product; the check stops at its budget and says so.
func TestSelectionChecksAreBounded(t *testing.T) {
	set := &Set{}
	const deployments, services = 1100, 1000
	labels := map[string]string{"app": "same", "tier": "front"}
	for i := range deployments {
		set.Deployments = append(set.Deployments, &Deployment{Metadata: ObjectMeta{Name: fmt.Sprint("d", i), Namespace: "default"},
			Spec: DeploymentSpec{Template: PodTemplate{Metadata: ObjectMeta{Labels: labels}}}})
	}
	var sels []selection
	for i := range services {
		sels = append(sels, selection{service: Key{Kind: KindService, Namespace: "default", Name: fmt.Sprint("s", i)},
			selector: map[string]string{"app": "same"}, at: position{file: "svc.yaml", line: i + 1, path: "spec.selector"}})
	}
	diags := checkSelections(set, sels)
	if len(diags) != 1 || !strings.HasSuffix(diags[0].String(), "warning: 47 Services not checked for what they select: their selectors match too many Deployments to check them all") {
		t.Fatalf("diagnostics %q", diagStrings(diags))
	}
}
