package spec

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// kubectlList is what `kubectl get deploy,svc -o yaml` writes, trimmed to the fields
// Shoal reads.
const kubectlList = `apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
  spec:
    selector:
      matchLabels: {app: web}
    template:
      metadata:
        labels: {app: web}
      spec:
        containers:
        - name: web
          image: nginx:1.25
- apiVersion: v1
  kind: Service
  metadata:
    name: web
  spec:
    selector: {app: web}
    ports:
    - port: 80
`

func TestLoadListItemsAsObjects(t *testing.T) {
	set, diags := Load(fstest.MapFS{"all.yaml": {Data: []byte(kubectlList)}}, LoadOptions{})
	if set == nil || len(diags) != 0 {
		t.Fatalf("diagnostics: %q", diagStrings(diags))
	}
	d, s := set.Deployment("default", "web"), set.Service("default", "web")
	if d == nil || s == nil || len(set.Objects()) != 2 {
		t.Fatalf("objects: %v", set.Objects())
	}
	// Each item is located at its own line, as if it were a document of the file.
	if d.Source != (Source{File: "all.yaml", Line: 6}) || s.Source != (Source{File: "all.yaml", Line: 20}) {
		t.Errorf("sources %v and %v, want all.yaml:6 and all.yaml:20", d.Source, s.Source)
	}
}

func TestLoadListErrors(t *testing.T) {
	nested := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: List\n  items: []\n"
	for _, tc := range []struct {
		name, data string
		opts       LoadOptions
		want       string
	}{
		{"an item's error at the item's line", strings.Replace(kubectlList, "    - port: 80", "    - port: eighty", 1), LoadOptions{},
			"all.yaml:27: spec.ports[0].port: expected an integer"},
		{"a List in a List", nested, LoadOptions{}, "all.yaml:7: a List item cannot itself be a List"},
		{"items not a list", "apiVersion: v1\nkind: List\nitems: {a: b}\n", LoadOptions{}, "all.yaml:3: items: expected a list of objects, got a mapping"},
		{"no apiVersion", "kind: List\nitems: []\n", LoadOptions{}, "all.yaml:1: apiVersion: required"},
		{"items count as documents", "---\n" + kubectlList, LoadOptions{MaxDocumentsPerFile: 1}, "all.yaml:21: file has more than 1 YAML documents and List items"},
		{"items count as objects", kubectlList, LoadOptions{MaxObjects: 1}, "all.yaml:20: the revision has 2 objects, over the limit of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, diags := Load(fstest.MapFS{"all.yaml": {Data: []byte(tc.data)}}, tc.opts)
			got := diagStrings(diags.Errors())
			if set != nil || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, tc.want) }) {
				t.Errorf("errors %q, want one starting %q", got, tc.want)
			}
		})
	}
}

func TestLoadTypedListsAndEmptyList(t *testing.T) {
	typed := strings.Replace(kubectlList, "kind: List", "kind: DeploymentList", 1)
	typed = strings.Replace(typed, "apiVersion: v1\nkind: DeploymentList", "apiVersion: apps/v1\nkind: DeploymentList", 1)
	set, diags := Load(fstest.MapFS{
		"typed.yaml": {Data: []byte(typed)},
		"empty.yaml": {Data: []byte("apiVersion: v1\nkind: List\nitems: []\n---\napiVersion: v1\nkind: ConfigMapList\nitems:\n")},
	}, LoadOptions{})
	if set == nil || len(diags) != 0 || len(set.Objects()) != 2 {
		t.Fatalf("diagnostics %q, objects %v", diagStrings(diags), set)
	}
	// A kind ending in List without items is an ordinary (unsupported) kind, not a List.
	_, diags = Decode("x.yaml", []byte("apiVersion: example.com/v1\nkind: PlayList\nmetadata: {name: a}\n"), LoadOptions{})
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "kind PlayList") {
		t.Errorf("diagnostics %q, want the unsupported-kind warning", diagStrings(diags))
	}
}
