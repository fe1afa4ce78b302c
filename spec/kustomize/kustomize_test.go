package kustomize

import (
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shoalhq/shoal/spec"
)

const baseDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        envFrom:
        - configMapRef: {name: settings}
`

const baseService = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
`

// shopRepo is a repository laid out as kustomize's documentation lays one out: a base,
// an overlay that patches it and generates a ConfigMap, and a plain manifest beside them.
func shopRepo() fstest.MapFS {
	return fstest.MapFS{
		"base/kustomization.yaml": {Data: []byte("resources:\n- deployment.yaml\n- service.yaml\n")},
		"base/deployment.yaml":    {Data: []byte(baseDeployment)},
		"base/service.yaml":       {Data: []byte(baseService)},
		"prod/kustomization.yaml": {Data: []byte(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources:
- ../base
patches:
- path: replicas.yaml
configMapGenerator:
- name: settings
  envs: [settings.env]
`)},
		// A strategic-merge patch is not a manifest: it must not load on its own.
		"prod/replicas.yaml": {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3}\n")},
		"prod/settings.env":  {Data: []byte("COLOR=blue\n")},
		"namespace.yaml":     {Data: []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")},
	}
}

func load(fsys fstest.MapFS, opts spec.LoadOptions) (*spec.Set, spec.Diagnostics) {
	opts.Kustomizer = Renderer{}
	return spec.Load(fsys, opts)
}

func diagStrings(ds spec.Diagnostics) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

func TestRenderOverlay(t *testing.T) {
	set, diags := load(shopRepo(), spec.LoadOptions{})
	if set == nil || len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", strings.Join(diagStrings(diags), "\n"))
	}
	// Only the overlay renders: the base is a resource of it, and the patch is not a manifest.
	if len(set.Deployments) != 1 || len(set.Services) != 1 || len(set.ConfigMaps) != 1 || len(set.Namespaces) != 1 {
		t.Fatalf("objects %v", set.Objects())
	}
	d := set.Deployment("shop", "web")
	if d == nil || *d.Spec.Replicas != 3 {
		t.Fatalf("Deployment shop/web %+v, want the overlay's 3 replicas", d)
	}
	// The generated ConfigMap's name has kustomize's hash suffix, and the reference to it follows.
	cm := set.ConfigMaps[0]
	ref := d.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name
	if !strings.HasPrefix(cm.Metadata.Name, "settings-") || ref != cm.Metadata.Name || cm.Data["COLOR"] != "blue" {
		t.Errorf("ConfigMap %s %v, referenced as %s", cm.Metadata.Name, cm.Data, ref)
	}
	if d.Source.File != "prod/kustomization.yaml" {
		t.Errorf("source %v, want the kustomization file", d.Source)
	}
}

// Without a Kustomizer, Load does not render: it warns, and loads nothing under the directory.
func TestLoadWithoutKustomizerWarns(t *testing.T) {
	set, diags := spec.Load(shopRepo(), spec.LoadOptions{})
	if set == nil || len(set.Objects()) != 1 {
		t.Fatalf("set %v, diagnostics %q", set, diagStrings(diags))
	}
	want := []string{
		"base/kustomization.yaml: warning: kustomization not rendered: run `kustomize build` and commit its output; files under this directory are not loaded",
		"prod/kustomization.yaml: warning: kustomization not rendered: run `kustomize build` and commit its output; files under this directory are not loaded",
	}
	if got := diagStrings(diags); !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

// What the decoder finds in a rendered object names the kustomization and the object.
func TestRenderedObjectDiagnostics(t *testing.T) {
	fsys := shopRepo()
	fsys["base/deployment.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(baseDeployment, "replicas: 1", "replicas: one", 1))}
	fsys["prod/replicas.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {minReadySeconds: 1}\n")}
	set, diags := load(fsys, spec.LoadOptions{})
	want := []string{`prod/kustomization.yaml: spec.replicas: expected an integer, got string "one" (Deployment "web" as rendered)`}
	if got := diagStrings(diags); set != nil || !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

// Every way kustomize could reach past the commit is refused before it runs, naming
// the kustomization that asks.
func TestRenderRefusesRemoteAndEscapingReferences(t *testing.T) {
	for _, tc := range []struct{ name, kustomization, want string }{
		{"https resource", "resources:\n- https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1\n", "remote bases and files are not supported"},
		{"github shorthand", "resources:\n- github.com/org/repo/deploy?ref=main\n", "remote bases and files are not supported"},
		{"scp-like git", "resources:\n- git@github.com:org/repo.git\n", "remote bases and files are not supported"},
		{"file URL", "resources:\n- file:///etc/kubernetes\n", "remote bases and files are not supported"},
		{"remote patch", "resources: [deployment.yaml]\npatches:\n- path: https://example.com/patch.yaml\n", "remote bases and files are not supported"},
		{"remote generator file", "resources: [deployment.yaml]\nconfigMapGenerator:\n- name: x\n  files: [conf=https://example.com/x]\n", "remote bases and files are not supported"},
		{"leaving the repository", "resources:\n- ../../../etc\n", "leaves the repository"},
		{"absolute path", "resources:\n- /etc/passwd\n", "absolute paths are not supported"},
		{"helm chart", "helmCharts:\n- name: redis\n  repo: https://charts.bitnami.com/bitnami\n", "HelmChartInflationGenerator with config: ` name: redis repo: https://charts.bitnami.com/bitnami `: must specify --enable-helm"},
		{"exec function", "resources: [deployment.yaml]\ntransformers:\n- fn.yaml\n", "external plugins disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"app/kustomization.yaml": {Data: []byte(tc.kustomization)},
				"app/deployment.yaml":    {Data: []byte(baseDeployment)},
				"app/fn.yaml": {Data: []byte(`apiVersion: example.com/v1
kind: Transformer
metadata:
  name: fn
  annotations:
    config.kubernetes.io/function: |
      exec:
        path: /bin/sh
`)},
			}
			set, diags := load(fsys, spec.LoadOptions{})
			got := diagStrings(diags.Errors())
			if set != nil || len(got) != 1 || !strings.HasPrefix(got[0], "app/kustomization.yaml: kustomize build: ") || !strings.Contains(strings.ToLower(got[0]), strings.ToLower(tc.want)) {
				t.Errorf("errors %q, want one for app/kustomization.yaml containing %q", got, tc.want)
			}
		})
	}
}

// laughs writes kustomizations that multiply a Deployment by width at each of levels
// levels: level i has width overlays of level i-1, each with its own name prefix, and
// uses them all ("billion laughs" made of directories). Level n renders width^n
// Deployments from about width×n small files.
func laughs(levels, width int) fstest.MapFS {
	fsys := fstest.MapFS{
		"l0/kustomization.yaml": {Data: []byte("resources: [deployment.yaml]\n")},
		"l0/deployment.yaml":    {Data: []byte(baseDeployment)},
	}
	for i := 1; i <= levels; i++ {
		var uses []string
		for w := range width {
			dir := fmt.Sprintf("l%d-%d", i-1, w)
			fsys[dir+"/kustomization.yaml"] = &fstest.MapFile{Data: fmt.Appendf(nil, "namePrefix: w%d-\nresources: [../l%d]\n", w, i-1)}
			uses = append(uses, "../"+dir)
		}
		fsys[fmt.Sprintf("l%d/kustomization.yaml", i)] = &fstest.MapFile{Data: fmt.Appendf(nil, "resources: [%s]\n", strings.Join(uses, ", "))}
	}
	return fsys
}

func TestRenderBoundsAmplification(t *testing.T) {
	// Within the limits, the doubling renders: 2^4 Deployments (and the ConfigMap they need).
	fsys := laughs(4, 2)
	fsys["settings.yaml"] = &fstest.MapFile{Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n")}
	set, diags := load(fsys, spec.LoadOptions{})
	if set == nil || len(set.Deployments) != 16 {
		t.Fatalf("diagnostics %q", diagStrings(diags))
	}
	// 2^9 and 100^9 copies (seconds and hours of kustomize's time): both stop at the
	// 100th kustomization loaded.
	for _, width := range []int{2, 100} {
		set, diags = load(laughs(9, width), spec.LoadOptions{})
		got := diagStrings(diags.Errors())
		if set != nil || len(got) != 1 || !strings.HasPrefix(got[0], "l9/kustomization.yaml: kustomize build: loads more than 100 kustomizations") {
			t.Errorf("width %d: errors %q, want the kustomization limit", width, got)
		}
	}
	// Deeper than kustomizations may use one another.
	set, diags = load(laughs(30, 1), spec.LoadOptions{})
	if got := diagStrings(diags.Errors()); set != nil || len(got) != 1 || !strings.Contains(got[0], "kustomizations use one another more than 20 deep") {
		t.Errorf("errors %q, want the depth limit", got)
	}
}

// Each of the other limits on what one rendering reads.
func TestRenderBoundsReads(t *testing.T) {
	configMaps := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c%d}\n", i)
		}
		return b.String()
	}
	list := "apiVersion: v1\nkind: List\nitems:\n" + strings.Repeat("- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n", 501)
	var patches strings.Builder
	for i := range 51 {
		fmt.Fprintf(&patches, "- target: {kind: ConfigMap}\n  patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: x}\n    data: {k%d: v}\n", i)
	}
	var images, fieldPaths strings.Builder
	for i := range 501 {
		fmt.Fprintf(&images, "- {name: img%d, newTag: v2}\n", i)
		fmt.Fprintf(&fieldPaths, "    - metadata.annotations.a%d\n", i)
	}
	big := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: NAME}\ndata:\n  a: " + strings.Repeat("x", 30<<10) + "\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		opts  spec.LoadOptions
		want  string
	}{
		{"documents", map[string]string{"all.yaml": configMaps(501)}, spec.LoadOptions{}, "reads more than 500 resources"},
		{"List items", map[string]string{"all.yaml": list}, spec.LoadOptions{}, "reads more than 500 resources"},
		{"patches times resources", map[string]string{"kustomization.yaml": "resources: [all.yaml]\npatches:\n" + patches.String(), "all.yaml": configMaps(100)}, spec.LoadOptions{},
			"asks for 51 patches, replacement targets, images, replicas and vars over 100 resources: more than 5000 of one times the other"},
		{"bytes", map[string]string{"a.yaml": strings.Replace(big, "NAME", "a", 1), "b.yaml": strings.Replace(big, "NAME", "b", 1), "c.yaml": strings.Replace(big, "NAME", "c", 1)},
			spec.LoadOptions{MaxFileBytes: 32 << 10}, "reads more than 65536 bytes"},
		{"images", map[string]string{"kustomization.yaml": "resources: [all.yaml]\nimages:\n" + images.String(), "all.yaml": configMaps(1)}, spec.LoadOptions{},
			"asks for more than 500 patches, replacement targets, images"},
		{"replacement file", map[string]string{
			"kustomization.yaml": "resources: [all.yaml]\nreplacements:\n- path: r.yaml\n", "all.yaml": configMaps(1),
			"r.yaml": "source: {kind: ConfigMap, fieldPath: metadata.name}\ntargets:\n- select: {kind: ConfigMap}\n  fieldPaths:\n" + fieldPaths.String()},
			spec.LoadOptions{}, "asks for more than 500 patches, replacement targets, images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			var resources []string
			for name, data := range tc.files {
				fsys["app/"+name] = &fstest.MapFile{Data: []byte(data)}
				resources = append(resources, name)
			}
			if _, ok := tc.files["kustomization.yaml"]; !ok {
				slices.Sort(resources)
				fsys["app/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources: [" + strings.Join(resources, ", ") + "]\n")}
			}
			set, diags := load(fsys, tc.opts)
			got := diagStrings(diags.Errors())
			if set != nil || len(got) != 1 || !strings.HasPrefix(got[0], "app/kustomization.yaml: kustomize build: "+tc.want) {
				t.Errorf("errors %q, want %q", got, tc.want)
			}
		})
	}
}

// A replacement copies a value without reading it again: what is rendered is bounded
// too, and measured before kustomize writes it out.
func TestRenderBoundsOutput(t *testing.T) {
	value := strings.Repeat("x", 20<<10)
	var paths strings.Builder
	for i := range 200 {
		fmt.Fprintf(&paths, "    - metadata.annotations.copy-%d\n", i)
	}
	fsys := fstest.MapFS{
		"app/kustomization.yaml": {Data: []byte(`resources: [source.yaml, deployment.yaml]
replacements:
- source: {kind: ConfigMap, name: source, fieldPath: data.value}
  targets:
  - select: {kind: Deployment}
    options: {create: true}
    fieldPaths:
` + paths.String())},
		"app/source.yaml":     {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: source}\ndata:\n  value: " + value + "\n")},
		"app/deployment.yaml": {Data: []byte(baseDeployment)},
	}
	set, diags := load(fsys, spec.LoadOptions{MaxFileBytes: 64 << 10})
	got := diagStrings(diags.Errors())
	if set != nil || len(got) != 1 || !strings.HasPrefix(got[0], "app/kustomization.yaml: kustomize build: renders more than 65536 bytes") {
		t.Errorf("errors %q, want the output limit", got)
	}
}

// Rendered objects count against the revision's limits like any others.
func TestRenderedObjectsCountAgainstLimits(t *testing.T) {
	set, diags := load(laughs(4, 2), spec.LoadOptions{MaxObjects: 10})
	if set != nil || !slices.ContainsFunc(diagStrings(diags.Errors()), func(s string) bool {
		return strings.Contains(s, "over the limit of 10 (max-objects-per-revision)")
	}) {
		t.Errorf("diagnostics %q, want the object limit", diagStrings(diags))
	}
	set, diags = load(shopRepo(), spec.LoadOptions{MaxTotalBytes: 600, MaxFileBytes: 600})
	if set != nil || !slices.ContainsFunc(diagStrings(diags.Errors()), func(s string) bool {
		return strings.HasPrefix(s, "prod/kustomization.yaml: manifests and rendered kustomizations total more than 600 bytes")
	}) {
		t.Errorf("diagnostics %q, want the revision byte limit", diagStrings(diags))
	}
}

func TestRenderCycleIsReported(t *testing.T) {
	fsys := fstest.MapFS{
		"a/kustomization.yaml": {Data: []byte("resources: [../b]\n")},
		"b/kustomization.yaml": {Data: []byte("resources: [../a]\n")},
	}
	set, diags := load(fsys, spec.LoadOptions{})
	if set != nil || len(diags.Errors()) == 0 {
		t.Errorf("set %v, diagnostics %q: want the cycle reported", set, diagStrings(diags))
	}
}

func TestRemote(t *testing.T) {
	for ref, want := range map[string]bool{
		"../base": false, "deployment.yaml": false, "overlays/prod": false, "dir/x@y:z": false, "github.company/x": false,
		"https://example.com/x.yaml": true, "http://x": true, "ssh://git@host/repo": true, "git::https://x": true,
		"github.com/org/repo": true, "git@gitlab.com:org/repo.git": true, "file:///srv/repo": true,
		"GitHub.com/org/repo": true, "HTTPS://example.com/x": true, "GIT::github.com/org/repo": true,
		"user@host/repo": true, "a@b": true, " github.com:org/repo": true,
	} {
		if got := remote(ref); got != want {
			t.Errorf("remote(%q) = %v, want %v", ref, got, want)
		}
	}
}

// A remote base in a base is found from the overlay that renders it, and named.
func TestRenderRefusesRemoteInBase(t *testing.T) {
	fsys := shopRepo()
	fsys["base/kustomization.yaml"] = &fstest.MapFile{Data: []byte("resources:\n- deployment.yaml\n- https://example.com/service.yaml\n")}
	set, diags := load(fsys, spec.LoadOptions{})
	want := []string{`prod/kustomization.yaml: kustomize build: in base/kustomization.yaml, which it uses: resources "https://example.com/service.yaml": ` + ErrRemote.Error()}
	if got := diagStrings(diags); set != nil || !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

// Two overlays of one base both render; when their objects collide, the error names
// both kustomizations.
func TestTwoOverlaysCollide(t *testing.T) {
	fsys := shopRepo()
	fsys["dev/kustomization.yaml"] = &fstest.MapFile{Data: []byte("namespace: shop\nresources: [../base]\nconfigMapGenerator:\n- name: settings\n  literals: [COLOR=red]\n")}
	set, diags := load(fsys, spec.LoadOptions{})
	want := "prod/kustomization.yaml: Deployment/shop/web is declared twice: at dev/kustomization.yaml and at prod/kustomization.yaml"
	if got := diagStrings(diags.Errors()); set != nil || !slices.Contains(got, want) {
		t.Errorf("errors %q, want %q", got, want)
	}
}

// testdata/mixed is a repository with everything that loads side by side: a base and an
// overlay, a JSON Namespace, a List from kubectl, and JSON files that are not manifests.
func TestLoadMixedRepository(t *testing.T) {
	set, diags := spec.Load(os.DirFS("testdata/mixed"), spec.LoadOptions{Kustomizer: Renderer{}})
	if set == nil || len(diags) != 0 {
		t.Fatalf("diagnostics:\n%s", strings.Join(diagStrings(diags), "\n"))
	}
	var got []string
	for _, o := range set.Objects() {
		// kustomize names a generated ConfigMap with a hash of its contents.
		key := regexp.MustCompile(`web-settings-[a-z0-9]{10}$`).ReplaceAllString(o.Key().String(), "web-settings-HASH")
		got = append(got, fmt.Sprintf("%s %s", key, o.Origin()))
	}
	slices.Sort(got)
	want := []string{
		"ConfigMap/shop/web-settings-HASH app/prod/kustomization.yaml",
		"ConfigMap/shop/worker-settings plain/worker-list.yaml:26",
		"Deployment/shop/web app/prod/kustomization.yaml",
		"Deployment/shop/worker plain/worker-list.yaml:7",
		"Namespace/shop plain/namespace.json:1",
		"Service/shop/web app/prod/kustomization.yaml",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("objects\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := set.Deployment("shop", "web"); *d.Spec.Replicas != 3 {
		t.Errorf("web has %d replicas, want the overlay's 3", *d.Spec.Replicas)
	}
}

// A transformer configuration may be a kustomization directory of its own: what it
// references is checked too.
func TestRenderRefusesRemoteInTransformerDirectory(t *testing.T) {
	fsys := fstest.MapFS{
		"app/kustomization.yaml":              {Data: []byte("resources: [deployment.yaml]\ntransformers: [transformers]\n")},
		"app/deployment.yaml":                 {Data: []byte(baseDeployment)},
		"app/transformers/kustomization.yaml": {Data: []byte("resources: [https://example.com/labels.yaml]\n")},
	}
	set, diags := load(fsys, spec.LoadOptions{})
	got := diagStrings(diags.Errors())
	if set != nil || len(got) != 1 || !strings.Contains(got[0], "in app/transformers/kustomization.yaml, which it uses: resources \"https://example.com/labels.yaml\": remote bases") {
		t.Errorf("errors %q, want the remote reference of the transformer directory", got)
	}
}

// TestRenderPathUsesBaseOutsideIt loads one directory of a repository (the agent's
// --path) whose overlay uses a base outside it, as a Flux Kustomization's path does:
// with the whole commit as Repository the base is reached; without, it cannot be.
func TestRenderPathUsesBaseOutsideIt(t *testing.T) {
	repo := shopRepo()
	repo["prod/namespace.yaml"] = repo["namespace.yaml"]
	k := repo["prod/kustomization.yaml"]
	repo["prod/kustomization.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(string(k.Data), "- ../base\n", "- ../base\n- namespace.yaml\n", 1))}
	sub, err := fs.Sub(repo, "prod")
	if err != nil {
		t.Fatal(err)
	}
	opts := spec.LoadOptions{Kustomizer: Renderer{}, Repository: repo, Path: "prod"}
	set, diags := spec.Load(sub, opts)
	if set == nil || diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", strings.Join(diagStrings(diags), "\n"))
	}
	d := set.Deployment("shop", "web")
	if d == nil || *d.Spec.Replicas != 3 || d.Source.File != "kustomization.yaml" {
		t.Fatalf("Deployment shop/web %+v, want the overlay's, from kustomization.yaml (relative to the path)", d)
	}
	// Only what the kustomization uses is read outside the path: a plain manifest
	// beside the base does not load.
	if len(set.Deployments) != 1 || len(set.Services) != 1 {
		t.Errorf("objects %v", set.Objects())
	}
	_, diags = spec.Load(sub, spec.LoadOptions{Kustomizer: Renderer{}})
	if got := diagStrings(diags.Errors()); len(got) != 1 || !strings.Contains(got[0], "leaves the repository") {
		t.Errorf("without the repository: %q, want the base refused as outside", got)
	}
}
