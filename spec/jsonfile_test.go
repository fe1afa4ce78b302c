package spec

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestJSONManifestKeys(t *testing.T) {
	for _, tc := range []struct {
		data             string
		apiVersion, kind bool
	}{
		{`{"apiVersion": "v1", "kind": "ConfigMap"}`, true, true},
		{` {"kind":"List","items":[{"apiVersion":"v1"}],"apiVersion":"v1"}`, true, true},
		{`{"name": "app", "scripts": {"kind": "x", "apiVersion": "y"}}`, false, false}, // nested keys do not count
		{`{"a": "\"kind\": {", "kind": 1}`, false, true},                               // escapes inside strings
		{`{"a": [1, {"b": "]"}], "apiVersion": "v1"}`, true, false},
		{`[{"apiVersion": "v1", "kind": "ConfigMap"}]`, false, false}, // not an object
		{`{"kind": "Deployment", "spec": {`, false, true},             // cut short: what was seen
		{`// a comment
{"apiVersion": "v1", "kind": "x"}`, false, false},
		{``, false, false},
		{"\uFEFF{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\"}", true, true},
		{`{"kin\u0064": "x"}`, false, false},
	} {
		apiVersion, kind := jsonManifestKeys([]byte(tc.data))
		if apiVersion != tc.apiVersion || kind != tc.kind {
			t.Errorf("jsonManifestKeys(%s) = %v, %v; want %v, %v", tc.data, apiVersion, kind, tc.apiVersion, tc.kind)
		}
	}
}

// A repository of an application holds JSON files that are not manifests: they must
// not reject the revision, nor make noise.
func TestLoadJSONManifestsBesideOtherJSON(t *testing.T) {
	deployment := `{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {"name": "web"},
  "spec": {
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    }
  }
}
`
	list := `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}},
  {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
]}`
	fsys := fstest.MapFS{
		"package.json":                {Data: []byte(`{"name": "shop", "version": "1.0.0", "dependencies": {"express": "^4"}}`)},
		"tsconfig.json":               {Data: []byte("{\n  // comments, as TypeScript allows\n  \"compilerOptions\": {}\n}\n")},
		"dashboards/latency.json":     {Data: []byte(`{"title": "Latency", "panels": [{"type": "graph", "targets": [{"expr": "up"}]}], "schemaVersion": 39}`)},
		"deploy/web.json":             {Data: []byte(deployment)},
		"deploy/rest.json":            {Data: []byte(list)},
		"deploy/broken-manifest.json": {Data: []byte(`{"kind": "ConfigMap", "metadata": {"name": "x"}}`)},
	}
	set, diags := Load(fsys, LoadOptions{})
	if set == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	if set.Deployment("default", "web") == nil || set.Service("default", "web") == nil || len(set.ConfigMaps) != 1 || len(set.Objects()) != 3 {
		t.Errorf("objects %v", set.Objects())
	}
	want := []string{"deploy/broken-manifest.json: warning: JSON file has kind but no apiVersion at its top level: not a manifest, skipped"}
	if got := diagStrings(diags); !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
	if d := set.Deployment("default", "web"); d.Source != (Source{File: "deploy/web.json", Line: 1}) {
		t.Errorf("source %v", d.Source)
	}
}

func TestLoadJSONErrorsAreLocated(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"a wrong type", `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
  "spec": {"ports": [{"port": "eighty"}]}}`, "svc.json:2: spec.ports[0].port: expected an integer"},
		{"invalid JSON", "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n  \"data\": {\"a\": \"b\"}\n", "svc.json:3: invalid YAML: did not find expected ',' or '}'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, diags := Load(fstest.MapFS{"svc.json": {Data: []byte(tc.data)}}, LoadOptions{})
			got := diagStrings(diags.Errors())
			if set != nil || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, tc.want) }) {
				t.Errorf("errors %q, want one starting %q", got, tc.want)
			}
		})
	}
}

// A JSON file over the file limit (a package-lock.json) is not read and does not
// reject the revision; a YAML one still does.
func TestLoadLargeJSONIsSkipped(t *testing.T) {
	big := append([]byte(`{"lockfileVersion": 3, "x": "`), bytes.Repeat([]byte("a"), 2000)...)
	big = append(big, `"}`...)
	set, diags := Load(fstest.MapFS{"package-lock.json": {Data: big}}, LoadOptions{MaxFileBytes: 1000})
	if set == nil || len(diags) != 1 || diags[0].Severity != SeverityWarning || !strings.Contains(diags[0].Message, "not read") {
		t.Errorf("diagnostics %q, want one warning", diagStrings(diags))
	}
}
