package spec

import (
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// hashOf loads a revision and returns the InstanceHash of its Deployment default/web.
func hashOf(t *testing.T, files map[string]string) string {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	set, diags := Load(fsys, LoadOptions{})
	if set == nil {
		t.Fatalf("load: %s", diags.Error())
	}
	return InstanceHash(set, set.Deployment("default", "web"))
}

func TestInstanceHash(t *testing.T) {
	web := withContainer(
		"env:",
		"- {name: A, valueFrom: {configMapKeyRef: {name: env, key: a}}}",
		"- {name: B, valueFrom: {secretKeyRef: {name: creds, key: b, optional: true}}}",
		"volumeMounts: [{name: files, mountPath: /etc/app}]",
	) + indent(6, []string{"volumes: [{name: files, configMap: {name: files}}]"})
	env := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: env}\ndata: {a: '1', z: '26'}\n"
	files := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: files}\ndata: {app.conf: 'x=1', b.conf: 'y=2'}\n"
	unrelated := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {k: v}\n"
	base := map[string]string{"web.yaml": web, "env.yaml": env, "files.yaml": files, "other.yaml": unrelated}
	with := func(name, text string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		if text == "" {
			delete(m, name)
		} else {
			m[name] = text
		}
		return m
	}
	h := hashOf(t, base)
	if !regexp.MustCompile(`^[0-9a-f]{10}$`).MatchString(h) {
		t.Fatalf("hash %q is not 10 hex digits", h)
	}
	for range 20 { // maps are iterated in a new order each time
		if again := hashOf(t, base); again != h {
			t.Fatalf("hash not stable: %s then %s", h, again)
		}
	}
	tests := []struct {
		name    string
		files   map[string]string
		changes bool
	}{
		{"replicas", with("web.yaml", web+"  replicas: 5\n"), false},
		{"strategy", with("web.yaml", web+"  strategy: {type: Recreate}\n"), false},
		{"deployment labels", with("web.yaml", strings.Replace(web, "  name: web\n", "  name: web\n  labels: {team: x}\n", 1)), false},
		{"map order in the source", with("env.yaml", strings.Replace(env, "{a: '1', z: '26'}", "{z: '26', a: '1'}", 1)), false},
		{"unrelated ConfigMap", with("other.yaml", strings.Replace(unrelated, "v}", "w}", 1)), false},
		{"explicit defaults", with("web.yaml", strings.Replace(web, "image: nginx:1.25", "image: nginx:1.25\n        imagePullPolicy: IfNotPresent", 1)), false},
		{"image", with("web.yaml", strings.Replace(web, "nginx:1.25", "nginx:1.26", 1)), true},
		{"template annotation", with("web.yaml", strings.Replace(web, "        app: web\n    spec:", "        app: web\n      annotations: {restartedAt: now}\n    spec:", 1)), true},
		{"env ConfigMap data", with("env.yaml", strings.Replace(env, "'26'", "'27'", 1)), true},
		{"volume ConfigMap data", with("files.yaml", strings.Replace(files, "x=1", "x=2", 1)), true},
		{"optional Secret appears", with("creds.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {b: hi}\n"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hashOf(t, tt.files); (got != h) != tt.changes {
				t.Errorf("hash %s vs base %s: want changed=%v", got, h, tt.changes)
			}
		})
	}
}

// TestConfigReferencesAreWhatTheHashCovers: every way a pod template uses a ConfigMap or
// Secret is listed once, in kind and name order, optional ones included.
func TestConfigReferencesAreWhatTheHashCovers(t *testing.T) {
	web := withContainer(
		"env:",
		"- {name: A, valueFrom: {configMapKeyRef: {name: env, key: a}}}",
		"- {name: B, valueFrom: {secretKeyRef: {name: creds, key: b, optional: true}}}",
		"- {name: C, valueFrom: {configMapKeyRef: {name: env, key: c, optional: true}}}",
		"envFrom: [{secretRef: {name: api-keys}}, {configMapRef: {name: common}}]",
		"volumeMounts: [{name: files, mountPath: /etc/app}, {name: tls, mountPath: /etc/tls}]",
	) + indent(6, []string{"volumes: [{name: files, configMap: {name: files}}, {name: tls, secret: {secretName: tls, optional: true}}]"})
	fsys := fstest.MapFS{"web.yaml": &fstest.MapFile{Data: []byte(web)}}
	for _, cm := range []string{"env", "common", "files"} {
		fsys[cm+".yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + cm + "}\ndata: {a: '1'}\n")}
	}
	fsys["api-keys.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: api-keys}\nstringData: {k: v}\n")}
	set, diags := Load(fsys, LoadOptions{})
	if set == nil {
		t.Fatalf("load: %s", diags.Error())
	}
	var got []string
	for _, k := range ConfigReferences(set.Deployment("default", "web")) {
		got = append(got, k.String())
	}
	want := "ConfigMap/default/common ConfigMap/default/env ConfigMap/default/files Secret/default/api-keys Secret/default/creds Secret/default/tls"
	if strings.Join(got, " ") != want {
		t.Errorf("ConfigReferences = %v, want %s", got, want)
	}
}
