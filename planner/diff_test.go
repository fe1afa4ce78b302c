package planner

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

func configMap(name string, data map[string]string) *spec.ConfigMap {
	return &spec.ConfigMap{
		TypeMeta: spec.TypeMeta{APIVersion: spec.APIVersionCore, Kind: spec.KindConfigMap},
		Metadata: spec.ObjectMeta{Name: name, Namespace: spec.DefaultNamespace}, Data: data,
	}
}

func secret(name string, data map[string][]byte) *spec.Secret {
	return &spec.Secret{
		TypeMeta: spec.TypeMeta{APIVersion: spec.APIVersionCore, Kind: spec.KindSecret},
		Metadata: spec.ObjectMeta{Name: name, Namespace: spec.DefaultNamespace}, Type: "Opaque", Data: data,
	}
}

func service(name string, port int32) *spec.Service {
	return &spec.Service{
		TypeMeta: spec.TypeMeta{APIVersion: spec.APIVersionCore, Kind: spec.KindService},
		Metadata: spec.ObjectMeta{Name: name, Namespace: spec.DefaultNamespace},
		Spec:     spec.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []spec.ServicePort{{Port: port}}},
	}
}

// The passwords the diff must never print.
const (
	oldPassword = "hunter2-old"
	newPassword = "hunter2-new"
)

func diffFixture() (old, new *spec.Set) {
	web1 := dep("web", 2, image("web:1.25"), ports(8080), func(d *spec.Deployment) {
		d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "DEBUG", Value: "0"}}
		d.Spec.Template.Metadata.Labels["app.kubernetes.io/version"] = "1.25"
	})
	web2 := dep("web", 3, image("web:1.27"), ports(8080, 9090), func(d *spec.Deployment) {
		d.Spec.Template.Spec.Containers[0].Env = []spec.EnvVar{{Name: "MODE", Value: "prod"}, {Name: "TRACE", Value: "1"}}
		d.Spec.Template.Metadata.Labels["app.kubernetes.io/version"] = "1.27"
		side := spec.Container{Name: "proxy", Image: "envoy:1.30"}
		d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, side)
	})
	old = &spec.Set{
		Deployments: []*spec.Deployment{dep("old-batch", 1), web1},
		ConfigMaps:  []*spec.ConfigMap{configMap("settings", map[string]string{"level": "info", "format": "json"})},
		Secrets: []*spec.Secret{
			secret("db", map[string][]byte{"password": []byte(oldPassword), "user": []byte("app")}),
			secret("same-length", map[string][]byte{"token": []byte(oldPassword)}),
		},
	}
	new = &spec.Set{
		Deployments: []*spec.Deployment{web2},
		Services:    []*spec.Service{service("web", 80)},
		ConfigMaps:  []*spec.ConfigMap{configMap("settings", map[string]string{"level": "debug", "format": "json"})},
		Secrets: []*spec.Secret{
			secret("db", map[string][]byte{"password": []byte(newPassword + "!"), "host": []byte("db.local")}),
			secret("same-length", map[string][]byte{"token": []byte(newPassword)}),
		},
	}
	return old, new
}

func TestDiffGolden(t *testing.T) {
	old, new := diffFixture()
	var out bytes.Buffer
	if err := FormatDiff(&out, Diff(old, new)); err != nil {
		t.Fatal(err)
	}
	for _, secretText := range []string{oldPassword, newPassword, "db.local", "aHVudGVy"} {
		if strings.Contains(out.String(), secretText) {
			t.Fatalf("the diff shows secret content %q:\n%s", secretText, out.String())
		}
	}
	golden(t, "diff.golden", out.Bytes())
}

func TestDiffFields(t *testing.T) {
	old, new := diffFixture()
	changes := Diff(old, new)
	got := map[string]FieldChange{}
	actions := map[string]Action{}
	for _, c := range changes {
		actions[c.Key.String()] = c.Action
		for _, f := range c.Fields {
			got[c.Key.Name+" "+f.Path] = f
		}
	}
	wantActions := map[string]Action{
		"Deployment/default/old-batch": ActionDelete,
		"Deployment/default/web":       ActionUpdate,
		"Service/default/web":          ActionCreate,
		"ConfigMap/default/settings":   ActionUpdate,
		"Secret/default/db":            ActionUpdate,
		"Secret/default/same-length":   ActionUpdate,
	}
	if len(actions) != len(wantActions) {
		t.Errorf("changes %v, want %v", actions, wantActions)
	}
	for k, a := range wantActions {
		if actions[k] != a {
			t.Errorf("%s: %q, want %q", k, actions[k], a)
		}
	}
	tests := []struct{ key, old, new string }{
		{"web spec.replicas", "2", "3"},
		{"web spec.template.spec.containers[main].image", `"web:1.25"`, `"web:1.27"`},
		{"web spec.template.spec.containers[main].env[DEBUG]", `{"name":"DEBUG","value":"0"}`, ""},
		{"web spec.template.spec.containers[main].env[TRACE]", "", `{"name":"TRACE","value":"1"}`},
		{"web spec.template.spec.containers[main].ports[1]", "", `{"containerPort":9090}`},
		{"web spec.template.spec.containers[proxy]", "", `{"image":"envoy:1.30","name":"proxy","resources":{}}`},
		{`web spec.template.metadata.labels["app.kubernetes.io/version"]`, `"1.25"`, `"1.27"`},
		{"settings data.level", `"info"`, `"debug"`},
		{"db data.password", "(secret, 11 bytes)", "(secret, 12 bytes)"},
		{"db data.user", "(secret, 3 bytes)", ""},
		{"db data.host", "", "(secret, 8 bytes)"},
		{"same-length data.token", "(secret, 11 bytes)", "(secret, 11 bytes, changed)"},
	}
	for _, tt := range tests {
		f, ok := got[tt.key]
		if !ok {
			t.Errorf("no change at %s; changes: %v", tt.key, got)
			continue
		}
		if f.Old != tt.old || f.New != tt.new {
			t.Errorf("%s: %q -> %q, want %q -> %q", tt.key, f.Old, f.New, tt.old, tt.new)
		}
	}
	if c := Diff(old, old); len(c) != 0 {
		t.Errorf("a set differs from itself: %+v", c)
	}
	if c := Diff(nil, nil); len(c) != 0 {
		t.Errorf("nil sets differ: %+v", c)
	}
	if c := Diff(nil, new); len(c) != len(new.Objects()) || c[0].Action != ActionCreate {
		t.Errorf("from nothing: %+v, want every object created", c)
	}
}

// A whole secret map appearing at once is redacted value by value.
func TestDiffRedactsWholeSecretData(t *testing.T) {
	old := &spec.Set{Secrets: []*spec.Secret{secret("db", nil)}}
	new := &spec.Set{Secrets: []*spec.Secret{func() *spec.Secret {
		s := secret("db", map[string][]byte{"password": []byte(oldPassword)})
		s.StringData = map[string]string{"token": newPassword}
		return s
	}()}}
	changes := Diff(old, new)
	if len(changes) != 1 || len(changes[0].Fields) != 2 {
		t.Fatalf("changes %+v, want data and stringData of one secret", changes)
	}
	for _, f := range changes[0].Fields {
		if strings.Contains(f.New, "hunter") || strings.Contains(f.New, "aHVudGVy") {
			t.Errorf("%s shows secret content: %s", f.Path, f.New)
		}
	}
	if got := changes[0].Fields[0]; got.Path != "data" || got.New != `{"password":"(secret, 11 bytes)"}` {
		t.Errorf("data: %+v", got)
	}
	if got := changes[0].Fields[1]; got.Path != "stringData" || got.New != `{"token":"(secret, 11 bytes)"}` {
		t.Errorf("stringData: %+v", got)
	}
}

func TestFieldKey(t *testing.T) {
	tests := []struct{ path, key, want string }{
		{"", "spec", "spec"},
		{"spec", "replicas", ".replicas"},
		{"metadata.labels", "app.kubernetes.io/name", `["app.kubernetes.io/name"]`},
		{"data", "my-key", ".my-key"},
		{"data", "1st", `["1st"]`},
		{"data", "", `[""]`},
	}
	for _, tt := range tests {
		if got := fieldKey(tt.path, tt.key); got != tt.want {
			t.Errorf("fieldKey(%q, %q) = %q, want %q", tt.path, tt.key, got, tt.want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatDiff(t *testing.T) {
	var out bytes.Buffer
	if err := FormatDiff(&out, nil); err != nil || out.String() != "No changes.\n" {
		t.Errorf("no changes: %q, %v", out.String(), err)
	}
	if err := FormatDiff(failingWriter{}, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a failing writer gives %v, want its error wrapped", err)
	}
}

// TestDiffRedactsSecretMetadata is the leak through `shoal plan`: kubectl apply copies a
// Secret whole, data included, into its last-applied-configuration annotation, so a diff
// of the annotation prints the old and the new token. Every annotation and label value of
// a Secret is redacted; those of other kinds are not.
func TestDiffRedactsSecretMetadata(t *testing.T) {
	lastApplied := func(token string) string {
		return `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"default"},"stringData":{"token":"` + token + `"}}`
	}
	withMeta := func(token string) *spec.Secret {
		s := secret("db", map[string][]byte{"token": []byte(token)})
		s.Metadata.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": lastApplied(token)}
		s.Metadata.Labels = map[string]string{"rotation": token}
		return s
	}
	old := &spec.Set{Secrets: []*spec.Secret{withMeta(oldPassword)}, ConfigMaps: []*spec.ConfigMap{configMap("settings", nil)}}
	cm := configMap("settings", nil)
	cm.Metadata.Annotations = map[string]string{"owner": "team-a"}
	new := &spec.Set{Secrets: []*spec.Secret{withMeta(newPassword)}, ConfigMaps: []*spec.ConfigMap{cm}}

	var out bytes.Buffer
	if err := FormatDiff(&out, Diff(old, new)); err != nil {
		t.Fatal(err)
	}
	for _, leaked := range []string{oldPassword, newPassword} {
		if strings.Contains(out.String(), leaked) {
			t.Fatalf("the plan shows the Secret's token %q:\n%s", leaked, out.String())
		}
	}
	for _, want := range []string{`last-applied-configuration"]`, "labels.rotation", `"team-a"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the plan does not show %s:\n%s", want, out.String())
		}
	}
}
