package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: Load decodes on workers it must stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultLoadOptionsValidate(t *testing.T) {
	if err := DefaultLoadOptions().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if err := (LoadOptions{}).Validate(); err != nil {
		t.Fatalf("zero options (meaning the defaults) do not validate: %v", err)
	}
	for _, bad := range []LoadOptions{{MaxFiles: -1}, {MaxFileBytes: 2 << 30}, {MaxNodesPerDocument: -5}} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidLoadOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidLoadOptions", bad, err)
		}
	}
}

func TestLoadNginxFromTheKubernetesDocs(t *testing.T) {
	set, diags := Load(os.DirFS("testdata/nginx"), LoadOptions{})
	if len(diags) != 0 || set == nil {
		t.Fatalf("diagnostics: %q", diagStrings(diags))
	}
	d := set.Deployment("default", "nginx-deployment")
	if d == nil || len(set.Objects()) != 1 {
		t.Fatalf("objects: %v", set.Objects())
	}
	c := d.Spec.Template.Spec.Containers[0]
	if *d.Spec.Replicas != 3 || c.Image != "nginx:1.25" || c.Ports[0].ContainerPort != 80 || c.ImagePullPolicy != PullIfNotPresent {
		t.Errorf("decoded %+v", d.Spec)
	}
	if d.Source != (Source{File: "deployment.yaml", Line: 1}) {
		t.Errorf("source %v", d.Source)
	}
}

func TestLoadShop(t *testing.T) {
	set, diags := Load(os.DirFS("testdata/shop"), LoadOptions{})
	if diags.HasErrors() || set == nil {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	if len(set.Deployments) != 12 || len(set.Services) != 12 || len(set.ConfigMaps) != 1 || len(set.Secrets) != 1 || len(set.Namespaces) != 1 {
		t.Errorf("loaded %d Deployments, %d Services, %d ConfigMaps, %d Secrets, %d Namespaces",
			len(set.Deployments), len(set.Services), len(set.ConfigMaps), len(set.Secrets), len(set.Namespaces))
	}
	warnings := diagStrings(diags)
	for _, want := range []string{
		`frontend.yaml:1: warning: kind ServiceAccount "frontend" (v1) is not supported by Shoal: skipped (Shoal gives instances no service account and no Kubernetes API token)`,
		`frontend.yaml:33: spec.template.spec.serviceAccountName: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token (the name is only reported to fieldRef spec.serviceAccountName)`,
		`frontend.yaml:141: spec.type: warning: type LoadBalancer: Shoal has no load balancer to provision; served as NodePort on every node`,
	} {
		if !slices.Contains(warnings, want) {
			t.Errorf("missing warning %q", want)
		}
	}
	frontend := set.Deployment("shop", "frontend")
	if frontend == nil || frontend.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port != FromString("http") {
		t.Fatalf("frontend: %+v", frontend)
	}
	if cart := set.Deployment("shop", "cartservice"); cart.Spec.Template.Spec.Containers[0].ReadinessProbe.GRPC == nil ||
		cart.Spec.Template.Spec.Containers[0].ReadinessProbe.GRPC.Port != 7070 {
		t.Errorf("grpc readiness probe not kept: %+v", cart.Spec.Template.Spec.Containers[0].ReadinessProbe)
	}
	if s := set.Secret("shop", "shop-secrets"); string(s.Data["session-key"]) != "not-a-real-key" || string(s.Data["redis-password"]) != "secret" || s.StringData != nil {
		t.Errorf("secret data %q, stringData %q", s.Data, s.StringData)
	}
}

// manifests is a small valid revision that cases change one file of.
func manifests() fstest.MapFS {
	return fstest.MapFS{
		"ns.yaml":          {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n")},
		"app/config.yaml":  {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: shop\ndata:\n  level: info\n")},
		"app/secret.yml":   {Data: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: shop\nstringData:\n  token: t0k3n\n")},
		"app/service.yaml": {Data: []byte(strings.Replace(serviceHead, "  name: web\n", "  name: web\n  namespace: shop\n", 1) + "  ports: [{port: 80}]\n")},
		"app/web.yaml": {Data: []byte(strings.Replace(minimalDeployment, "  name: web\n", "  name: web\n  namespace: shop\n", 1) +
			"        env:\n" +
			"        - name: LEVEL\n" +
			"          valueFrom: {configMapKeyRef: {name: cfg, key: level}}\n" +
			"        envFrom:\n" +
			"        - secretRef: {name: creds}\n" +
			"      volumes:\n" +
			"      - name: config\n" +
			"        configMap: {name: cfg, items: [{key: level, path: level.txt}]}\n")},
		"README.md":             {Data: []byte("# not a manifest\n")},
		".github/workflow.yaml": {Data: []byte("on: push\n")},
		".pre-commit.yaml":      {Data: []byte("repos: []\n")},
	}
}

func TestLoadAcrossFiles(t *testing.T) {
	tests := []struct {
		name   string
		change func(fstest.MapFS)
		want   []string
	}{
		{"valid", func(fstest.MapFS) {}, nil},
		{"duplicate object", func(m fstest.MapFS) {
			m["app/copy.yaml"] = &fstest.MapFile{Data: append([]byte("---\n"), m["app/config.yaml"].Data...)}
		}, []string{`app/copy.yaml:2: ConfigMap/shop/cfg is declared twice: at app/config.yaml:1 and at app/copy.yaml:2`}},
		{"missing ConfigMap", func(m fstest.MapFS) { delete(m, "app/config.yaml") }, []string{
			`app/web.yaml:20: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: configmap "cfg" not found in namespace "shop" of this commit: add it to the repository or mark the reference optional: true`,
			`app/web.yaml:25: spec.template.spec.volumes[0].configMap.name: configmap "cfg" not found in namespace "shop" of this commit: add it to the repository or mark the reference optional: true`,
		}},
		{"missing Secret", func(m fstest.MapFS) { delete(m, "app/secret.yml") }, []string{
			`app/web.yaml:22: spec.template.spec.containers[0].envFrom[0].secretRef.name: secret "creds" not found in namespace "shop" of this commit: add it to the repository (encrypted secrets are a coming feature) or mark the reference optional: true`,
		}},
		{"optional references may be missing", func(m fstest.MapFS) {
			delete(m, "app/secret.yml")
			m["app/web.yaml"].Data = []byte(strings.Replace(string(m["app/web.yaml"].Data), "{name: creds}", "{name: creds, optional: true}", 1))
		}, nil},
		{"missing key", func(m fstest.MapFS) {
			m["app/config.yaml"].Data = []byte(strings.Replace(string(m["app/config.yaml"].Data), "level:", "verbosity:", 1))
		}, []string{
			`app/web.yaml:20: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.key: key "level" of configmap "cfg" not found in namespace "shop" of this commit: add the key to the ConfigMap or mark the reference optional: true`,
			`app/web.yaml:25: spec.template.spec.volumes[0].configMap.items[0].key: key "level" of configmap "cfg" not found in namespace "shop" of this commit: add the key to the ConfigMap or mark the reference optional: true`,
		}},
		{"undeclared namespace", func(m fstest.MapFS) { delete(m, "ns.yaml") }, []string{
			`app/config.yaml:5: metadata.namespace: namespace "shop" is not declared: add a Namespace object for it or use "default"`,
			`app/secret.yml:5: metadata.namespace: namespace "shop" is not declared: add a Namespace object for it or use "default"`,
			`app/service.yaml:5: metadata.namespace: namespace "shop" is not declared: add a Namespace object for it or use "default"`,
			`app/web.yaml:5: metadata.namespace: namespace "shop" is not declared: add a Namespace object for it or use "default"`,
		}},
		{"invalid names are not also reported missing", func(m fstest.MapFS) {
			m["app/config.yaml"].Data = []byte(strings.Replace(string(m["app/config.yaml"].Data), "namespace: shop", "namespace: Shop", 1))
			m["app/web.yaml"].Data = []byte(strings.Replace(string(m["app/web.yaml"].Data), "{name: creds}", "{name: Creds}", 1))
		}, []string{
			`app/config.yaml:5: metadata.namespace: invalid value "Shop": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`,
			`app/web.yaml:20: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: configmap "cfg" not found in namespace "shop" of this commit: add it to the repository or mark the reference optional: true`,
			`app/web.yaml:22: spec.template.spec.containers[0].envFrom[0].secretRef.name: invalid value "Creds": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit`,
			`app/web.yaml:25: spec.template.spec.volumes[0].configMap.name: configmap "cfg" not found in namespace "shop" of this commit: add it to the repository or mark the reference optional: true`,
		}},
		{"one bad file among good ones rejects all and lists every error", func(m fstest.MapFS) {
			m["app/bad.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: Bad\nspec:\n  replicas: -2\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers: [{name: x}]\n")}
			m["z.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 99999}], selector: {a: b}}\n")}
		}, []string{
			`app/bad.yaml:4: metadata.name: invalid value "Bad": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit`,
			`app/bad.yaml:6: spec.replicas: must be greater than or equal to 0, got -2`,
			`app/bad.yaml:11: spec.template.spec.containers[0].image: required`,
			`z.yaml:4: spec.ports[0].port: must be between 1 and 65535, inclusive, got 99999`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := manifests()
			tt.change(fsys)
			set, diags := Load(fsys, LoadOptions{})
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			if (set == nil) != diags.HasErrors() {
				t.Errorf("set = %v with errors %v: want a Set exactly when there are no errors", set, diags.HasErrors())
			}
			if tt.name == "valid" && len(set.Objects()) != 5 {
				t.Errorf("loaded %d objects, want 5 (dot files and non-YAML skipped)", len(set.Objects()))
			}
		})
	}
}

func TestLoadSetIsSortedAndDefaulted(t *testing.T) {
	fsys := fstest.MapFS{
		"b.yaml": {Data: []byte(strings.Replace(serviceHead, "name: web", "name: b", 1) + "  ports: [{port: 80}]\n")},
		"a.yaml": {Data: []byte(strings.Replace(serviceHead, "name: web", "name: c", 1) + "  ports: [{port: 80}]\n---\n" +
			strings.Replace(serviceHead, "name: web", "name: a", 1) + "  ports: [{port: 80}]\n")},
	}
	set, diags := Load(fsys, LoadOptions{})
	if set == nil {
		t.Fatal(diags.Error())
	}
	var names []string
	for _, s := range set.Services {
		names = append(names, s.Metadata.Name+"@"+s.Source.String())
	}
	if want := []string{"a@a.yaml:10", "b@b.yaml:1", "c@a.yaml:1"}; !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	if p := set.Service("default", "a").Spec.Ports[0]; p.Protocol != ProtocolTCP || *p.TargetPort != FromInt(80) {
		t.Errorf("port not defaulted: %+v", p)
	}
}

func TestLoadLimits(t *testing.T) {
	three := fstest.MapFS{
		"a.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")},
		"b.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")},
		"c.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n")},
	}
	tests := []struct {
		name string
		opts LoadOptions
		want []string
	}{
		{"too many files", LoadOptions{MaxFiles: 2}, []string{`c.yaml: more than 2 manifest files`}},
		{"too many bytes", LoadOptions{MaxFileBytes: 60, MaxTotalBytes: 100}, []string{`b.yaml: manifests total more than 100 bytes (max-revision-bytes)`}},
		{"files too large", LoadOptions{MaxFileBytes: 10}, []string{
			`a.yaml: file is 51 bytes, more than the limit of 10 (max-file-bytes)`,
			`b.yaml: file is 51 bytes, more than the limit of 10 (max-file-bytes)`,
			`c.yaml: file is 51 bytes, more than the limit of 10 (max-file-bytes)`}},
		{"invalid options", LoadOptions{MaxFiles: -1}, []string{`.: spec: invalid load options: MaxFiles is -1, must not be negative`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := &openCounter{FS: three}
			set, diags := Load(fsys, tt.opts)
			if got := diagStrings(diags); set != nil || !slices.Equal(got, tt.want) {
				t.Errorf("set %v, diagnostics:\n got  %q\n want %q", set, got, tt.want)
			}
			if fsys.opens != 0 {
				t.Errorf("opened %d files: limits must be enforced before reading", fsys.opens)
			}
		})
	}
}

// openCounter counts the files opened for reading (directories aside).
type openCounter struct {
	fs.FS
	opens int
}

func (c *openCounter) Open(name string) (fs.File, error) {
	f, err := c.FS.Open(name)
	if err == nil {
		if info, err := f.Stat(); err == nil && !info.IsDir() {
			c.opens++
		}
	}
	return f, err
}

func (c *openCounter) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(c.FS, name) }

func TestLoadReportsOtherFilesBesideATooLargeOne(t *testing.T) {
	big := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {k: " + strings.Repeat("x", 100) + "}\n")
	fsys := fstest.MapFS{
		"big.yaml": {Data: big},
		"bad.yaml": {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad}\n")},
	}
	_, diags := Load(fsys, LoadOptions{MaxFileBytes: 100})
	want := []string{
		`bad.yaml:3: metadata.name: invalid value "Bad": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit`,
		fmt.Sprintf(`big.yaml: file is %d bytes, more than the limit of 100 (max-file-bytes)`, len(big)),
	}
	if got := diagStrings(diags); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got  %q\n want %q", got, want)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apps/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n")
	write(".git/config.yaml", "not: [valid")
	write("outside/secret.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: outside}\n")
	if err := os.Symlink(filepath.Join(dir, "outside/secret.yaml"), filepath.Join(dir, "apps/link.yaml")); err != nil {
		t.Fatal(err)
	}
	set, diags := Load(os.DirFS(dir), LoadOptions{})
	if want := []string{`apps/link.yaml: warning: not a regular file (a symlink?): skipped`}; !slices.Equal(diagStrings(diags), want) {
		t.Errorf("diagnostics %q, want %q", diagStrings(diags), want)
	}
	if set == nil || len(set.Namespaces) != 2 {
		t.Fatalf("set %+v", set)
	}
}

func TestValidateBuiltSet(t *testing.T) {
	d := &Deployment{
		TypeMeta: TypeMeta{APIVersion: APIVersionApps, Kind: KindDeployment},
		Metadata: ObjectMeta{Name: "web"},
		Spec: DeploymentSpec{
			Selector: &LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: PodTemplate{
				Metadata: ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: PodSpec{Containers: []Container{{Name: "web", Image: "nginx:1.25",
					EnvFrom: []EnvFromSource{{ConfigMapRef: &LocalObjRef{Name: "cfg"}}}}}},
			},
		},
		Source: Source{File: "gen/web.yaml", Line: 3},
	}
	SetDefaults(d)
	set := &Set{Deployments: []*Deployment{d}}
	want := []string{`gen/web.yaml:3: spec.template.spec.containers[0].envFrom[0].configMapRef.name: configmap "cfg" not found in namespace "default" of this commit: add it to the repository or mark the reference optional: true`}
	if got := diagStrings(Validate(set)); !slices.Equal(got, want) {
		t.Fatalf("Validate = %q, want %q", got, want)
	}
	set.ConfigMaps = []*ConfigMap{{Metadata: ObjectMeta{Name: "cfg", Namespace: "default"}}}
	if got := Validate(set); len(got) != 0 {
		t.Fatalf("Validate = %q, want nothing", diagStrings(got))
	}
}
