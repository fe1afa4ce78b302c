package spec

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// diagStrings renders diagnostics for comparison.
func diagStrings(ds Diagnostics) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

// minimalDeployment is a valid Deployment; replacing its parts makes the test cases.
const minimalDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
`

func TestDecodeDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		opts LoadOptions
		want []string
	}{
		{
			name: "valid",
			yaml: minimalDeployment,
		},
		{
			name: "empty documents are ignored",
			yaml: "---\n---\n# only a comment\n---\n" + minimalDeployment + "---\n",
		},
		{
			name: "byte order mark and CRLF line endings",
			yaml: "\ufeff" + strings.ReplaceAll(minimalDeployment, "\n", "\r\n"),
		},
		{
			name: "string where an integer is expected",
			yaml: minimalDeployment + "  replicas: \"3\"\n",
			want: []string{`t.yaml:17: spec.replicas: expected an integer, got string "3"`},
		},
		{
			name: "integer where a string is expected",
			yaml: minimalDeployment + "        env:\n        - name: PORT\n          value: 8080\n",
			want: []string{`t.yaml:19: spec.template.spec.containers[0].env[0].value: expected a string, got integer (value not shown: it may be secret)`},
		},
		{
			name: "mapping where a list is expected",
			yaml: minimalDeployment + "        ports:\n          containerPort: 80\n",
			want: []string{`t.yaml:18: spec.template.spec.containers[0].ports: expected a list, got a mapping`},
		},
		{
			name: "integer out of range",
			yaml: minimalDeployment + "  replicas: 99999999999\n",
			want: []string{`t.yaml:17: spec.replicas: integer 99999999999 out of range for 32 bits`},
		},
		{
			name: "boolean expected",
			yaml: minimalDeployment + "        volumeMounts:\n        - name: x\n          mountPath: /x\n          readOnly: maybe\n",
			want: []string{`t.yaml:20: spec.template.spec.containers[0].volumeMounts[0].readOnly: expected a boolean, got string "maybe"`},
		},
		{
			name: "every type error of a document is listed",
			yaml: minimalDeployment + "  replicas: many\n  minReadySeconds: [1]\n",
			want: []string{
				`t.yaml:17: spec.replicas: expected an integer, got string "many"`,
				`t.yaml:18: spec.minReadySeconds: expected an integer, got a list`,
			},
		},
		{
			name: "real Kubernetes fields Shoal does not honour are warnings with their full path",
			yaml: minimalDeployment + "        stdin: true\n      serviceAccountName: web\n  paused: true\n",
			want: []string{
				`t.yaml:17: spec.template.spec.containers[0].stdin: warning: not honoured by Shoal`,
				`t.yaml:18: spec.template.spec.serviceAccountName: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token (the name is only reported to fieldRef spec.serviceAccountName)`,
				`t.yaml:19: spec.paused: warning: not honoured by Shoal`,
			},
		},
		{
			name: "empty unknown fields ask for nothing",
			yaml: strings.Replace(minimalDeployment, "  name: web\n", "  name: web\n  creationTimestamp: null\n", 1) + "status: {}\n",
		},
		{
			name: "field names are case-sensitive",
			yaml: strings.Replace(minimalDeployment, "image:", "Image: x\n        image:", 1),
			want: []string{`t.yaml:16: spec.template.spec.containers[0].Image: unknown field "Image": did you mean "image"?`},
		},
		{
			name: "duplicate field",
			yaml: minimalDeployment + "        image: nginx:1.26\n",
			want: []string{`t.yaml:17: spec.template.spec.containers[0].image: duplicate field "image"`},
		},
		{
			name: "duplicate map key",
			yaml: strings.Replace(minimalDeployment, "      app: web\n", "      app: web\n      app: api\n", 1),
			want: []string{`t.yaml:9: spec.selector.matchLabels.app: duplicate key "app"`},
		},
		{
			name: "unsupported kind is skipped with a warning",
			yaml: "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
			want: []string{`t.yaml:1: warning: kind ServiceAccount "web" (v1) is not supported by Shoal: skipped (Shoal gives instances no service account and no Kubernetes API token)`},
		},
		{
			name: "custom resources are skipped with a warning",
			yaml: "apiVersion: cert-manager.io/v1\nkind: Certificate\nspec:\n  secretName: tls\n",
			want: []string{`t.yaml:1: warning: kind Certificate (cert-manager.io/v1) is not supported by Shoal: skipped`},
		},
		{
			name: "supported kind with a wrong apiVersion",
			yaml: strings.Replace(minimalDeployment, "apps/v1", "extensions/v1beta1", 1),
			want: []string{`t.yaml:1: apiVersion: no matches for kind "Deployment" in version "extensions/v1beta1": use apps/v1`},
		},
		{
			name: "misspelt kind",
			yaml: strings.Replace(minimalDeployment, "kind: Deployment", "kind: deployment", 1),
			want: []string{`t.yaml:2: kind: no matches for kind "deployment" in version "apps/v1": did you mean Deployment?`},
		},
		{
			name: "misspelt kind of a built-in group is an error, as in Kubernetes",
			yaml: strings.Replace(minimalDeployment, "kind: Deployment", "kind: Deploymnet", 1),
			want: []string{`t.yaml:2: kind: no matches for kind "Deploymnet" in version "apps/v1": did you mean Deployment?`},
		},
		{
			name: "kind in a version that no longer serves it",
			yaml: "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: web\n",
			want: []string{`t.yaml:1: apiVersion: no matches for kind "Ingress" in version "extensions/v1beta1": use networking.k8s.io/v1`},
		},
		{
			name: "kind a built-in group lacks, far from any",
			yaml: "apiVersion: apps/v1\nkind: Wombat\nmetadata:\n  name: web\n",
			want: []string{`t.yaml:2: kind: no matches for kind "Wombat" in version "apps/v1"`},
		},
		{
			name: "real kinds Shoal does not run are skipped with a warning",
			yaml: "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n",
			want: []string{
				`t.yaml:1: warning: kind Ingress "web" (networking.k8s.io/v1) is not supported by Shoal: skipped`,
				`t.yaml:6: warning: kind HorizontalPodAutoscaler "web" (autoscaling/v2) is not supported by Shoal: skipped`,
				`t.yaml:11: warning: kind StatefulSet "db" (apps/v1) is not supported by Shoal: skipped`,
			},
		},
		{
			name: "a field Kubernetes lacks is an error with the field it likely meant",
			yaml: strings.Replace(minimalDeployment, "spec:\n  selector:", "spec:\n  replica: 3\n  selector:", 1) +
				"        env:\n        - name: A\n          valuefrom: {fieldRef: {fieldPath: metadata.name}}\n",
			want: []string{
				`t.yaml:6: spec.replica: unknown field "replica": did you mean "replicas"?`,
				`t.yaml:20: spec.template.spec.containers[0].env[0].valuefrom: unknown field "valuefrom": did you mean "valueFrom"?`,
			},
		},
		{
			name: "a field Kubernetes lacks is an error even when empty, and without a hint when nothing is close",
			yaml: minimalDeployment + "  frobnicate: {}\n",
			want: []string{`t.yaml:17: spec.frobnicate: unknown field "frobnicate"`},
		},
		{
			name: "typos inside a field Shoal does not honour are errors; the field warns once",
			yaml: minimalDeployment + "      dnsConfig:\n        nameservers: [1.1.1.1]\n        serches: [a]\n        options:\n        - {name: ndots, valu: \"2\"}\n",
			want: []string{
				`t.yaml:17: spec.template.spec.dnsConfig: warning: not honoured by Shoal`,
				`t.yaml:19: spec.template.spec.dnsConfig.serches: unknown field "serches": did you mean "searches"?`,
				`t.yaml:21: spec.template.spec.dnsConfig.options[0].valu: unknown field "valu": did you mean "value"?`,
			},
		},
		{
			name: "values inside a field Shoal does not honour must have Kubernetes' types",
			yaml: minimalDeployment + "      hostAliases:\n      - ip: 10.0.0.1\n        hostnames: localhost\n",
			want: []string{
				`t.yaml:17: spec.template.spec.hostAliases: warning: not honoured by Shoal`,
				`t.yaml:19: spec.template.spec.hostAliases[0].hostnames: expected a list, got string "localhost"`,
			},
		},
		{
			name: "a restrictive field Shoal cannot enforce is still an error",
			yaml: minimalDeployment + "      runtimeClassName: gvisor\n",
			want: []string{`t.yaml:17: spec.template.spec.runtimeClassName: field not supported: Shoal runs every container with runc; it cannot give the sandbox a runtime class asks for, and running without it would fail open`},
		},
		{
			name: "what Shoal does anyway loads without a warning; another value warns",
			yaml: minimalDeployment + "      restartPolicy: Always\n      hostNetwork: true\n      dnsPolicy: Default\n",
			want: []string{`t.yaml:19: spec.template.spec.dnsPolicy: warning: not honoured by Shoal: Shoal does "ClusterFirst"`},
		},
		{
			name: "the service account fields are one feature",
			yaml: minimalDeployment + "      serviceAccount: web\n      automountServiceAccountToken: false\n",
			want: []string{
				`t.yaml:17: spec.template.spec.serviceAccount: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token`,
				`t.yaml:18: spec.template.spec.automountServiceAccountToken: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token`,
			},
		},
		{
			name: "YAML 1.1 booleans in string fields are errors, as in kubectl",
			yaml: strings.Replace(minimalDeployment, "      app: web\n", "      app: web\n      debug: yes\n", 1) + "        env:\n        - {name: A, value: on}\n        - {name: B, value: \"no\"}\n",
			want: []string{
				`t.yaml:9: spec.selector.matchLabels.debug: expected a string, got "yes", which kubectl reads as a boolean (YAML 1.1 makes unquoted y, yes, on, n, no and off booleans): quote it`,
				`t.yaml:19: spec.template.spec.containers[0].env[0].value: expected a string, got (value not shown: it may be secret), which kubectl reads as a boolean (YAML 1.1 makes unquoted y, yes, on, n, no and off booleans): quote it`,
			},
		},
		{
			name: "integral numbers fit integer fields, as kubectl reads them through JSON",
			yaml: strings.Replace(minimalDeployment, "spec:\n  selector:", "spec:\n  replicas: 2.0\n  minReadySeconds: 1.5\n  progressDeadlineSeconds: 1e3\n  selector:", 1),
			want: []string{`t.yaml:7: spec.minReadySeconds: expected an integer, got number "1.5"`},
		},
		{
			name: "missing apiVersion",
			yaml: strings.Replace(minimalDeployment, "apiVersion: apps/v1\n", "", 1),
			want: []string{`t.yaml:1: apiVersion: required: every manifest needs apiVersion and kind`},
		},
		{
			name: "missing kind",
			yaml: "apiVersion: v1\nmetadata:\n  name: x\n",
			want: []string{`t.yaml:1: kind: required: every manifest needs apiVersion and kind`},
		},
		{
			name: "kind that is not a string",
			yaml: "apiVersion: v1\nkind: [Service]\n",
			want: []string{`t.yaml:2: kind: expected a string, got a list`},
		},
		{
			name: "document that is not a mapping",
			yaml: "- apiVersion: v1\n",
			want: []string{`t.yaml:1: a manifest must be a mapping with apiVersion and kind, got a list`},
		},
		{
			name: "invalid YAML",
			yaml: minimalDeployment + "  replicas: [1\n",
			want: []string{`t.yaml:17: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "invalid YAML: parser error inside a block mapping",
			yaml: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n labels: {}\n",
			want: []string{`t.yaml:5: invalid YAML: did not find expected key`},
		},
		{
			name: "invalid YAML: missing colon in a later document",
			yaml: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\napiVersion: v1\nkind\n",
			want: []string{`t.yaml:7: invalid YAML: could not find expected ':'`},
		},
		{
			name: "tabs are invalid YAML",
			yaml: "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: x\n",
			want: []string{`t.yaml:4: invalid YAML: found character that cannot start any token`},
		},
		{
			name: "invalid base64 in Secret data",
			yaml: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  key: not base64!\n",
			want: []string{`t.yaml:6: data.key: invalid base64 data: illegal base64 data at input byte 3`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Decode("t.yaml", []byte(tt.yaml), tt.opts)
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// aliasBomb is the "billion laughs" document: nine levels of nine aliases each,
// which would expand to 9^9 strings.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\nx0: &a0 [lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := range 9 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestDecodeHostileInput(t *testing.T) {
	deep := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\nx: " + strings.Repeat("[", 150) + strings.Repeat("]", 150) + "\n"
	tests := []struct {
		name string
		data []byte
		opts LoadOptions
		want []string
	}{
		{
			name: "alias bomb",
			data: []byte(aliasBomb()),
			want: []string{`t.yaml:1: document has more than 100000 YAML nodes once aliases are expanded`},
		},
		{
			name: "alias cycle",
			data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nx: &a [*a]\n"),
			want: []string{`t.yaml:5: document nests deeper than 100 levels`},
		},
		{
			name: "nesting too deep",
			data: []byte(deep),
			want: []string{`t.yaml:5: document nests deeper than 100 levels`},
		},
		{
			name: "NUL bytes",
			data: []byte("apiVersion: v1\nkind: ConfigMap\n\x00\x01\x02binary"),
			want: []string{`t.yaml:3: file contains a NUL byte: manifests must be UTF-8 text, not binary`},
		},
		{
			name: "invalid UTF-8",
			data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n"),
			want: []string{`t.yaml:4: file is not valid UTF-8`},
		},
		{
			name: "UTF-16 is refused as binary",
			data: []byte("\xff\xfea\x00p\x00i\x00"),
			want: []string{`t.yaml:1: file contains a NUL byte: manifests must be UTF-8 text, not binary`},
		},
		{
			name: "file too large",
			data: []byte(minimalDeployment),
			opts: LoadOptions{MaxFileBytes: 100},
			want: []string{fmt.Sprintf(`t.yaml: file is %d bytes, more than the limit of 100`, len(minimalDeployment))},
		},
		{
			name: "too many documents",
			data: []byte("---\n---\n---\n"),
			opts: LoadOptions{MaxDocumentsPerFile: 2},
			want: []string{`t.yaml:3: file has more than 2 YAML documents`},
		},
		{
			name: "node budget counts every node",
			data: []byte(minimalDeployment),
			opts: LoadOptions{MaxNodesPerDocument: 20},
			want: []string{`t.yaml:1: document has more than 20 YAML nodes once aliases are expanded`},
		},
		{
			name: "negative options",
			data: []byte(minimalDeployment),
			opts: LoadOptions{MaxDepth: -1},
			want: []string{`t.yaml: spec: invalid load options: MaxDepth is -1, must not be negative`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, diags := Decode("t.yaml", tt.data, tt.opts)
			if got := diagStrings(diags); !slices.Equal(got, tt.want) {
				t.Errorf("diagnostics:\n got  %q\n want %q", got, tt.want)
			}
			if objs != nil {
				t.Errorf("objects decoded despite errors: %v", objs)
			}
		})
	}
}

func TestDecodeObjects(t *testing.T) {
	data := "# the web tier\n" + minimalDeployment + "---\n" +
		"apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n" +
		"---\n---\n" +
		"common: &common\n  app: shop\n  tier: front\n---\n" // not a manifest: refused below
	_, diags := Decode("apps/web.yaml", []byte(data), LoadOptions{})
	if want := `apps/web.yaml:28: apiVersion: required: every manifest needs apiVersion and kind`; len(diags) != 1 || diags[0].String() != want {
		t.Fatalf("diagnostics = %q, want only %q", diagStrings(diags), want)
	}

	objs, diags := Decode("apps/web.yaml", []byte(strings.TrimSuffix(data, "common: &common\n  app: shop\n  tier: front\n---\n")), LoadOptions{})
	if len(diags) != 0 || len(objs) != 2 {
		t.Fatalf("Decode = %d objects, %q", len(objs), diagStrings(diags))
	}
	d, ok := objs[0].(*Deployment)
	if !ok || d.Source != (Source{File: "apps/web.yaml", Line: 2}) || d.Metadata.Name != "web" {
		t.Fatalf("first object = %#v", objs[0])
	}
	s, ok := objs[1].(*Service)
	if !ok || s.Source != (Source{File: "apps/web.yaml", Line: 19}) || s.Spec.Ports[0].Port != 80 {
		t.Fatalf("second object = %#v", objs[1])
	}
}

func TestDecodeMergeKeysAndAliases(t *testing.T) {
	data := `apiVersion: v1
kind: ConfigMap
metadata:
  name: merged
  labels: &labels
    app: web
    tier: front
  annotations:
    <<: *labels
    tier: back
data:
  a: &text hello
  b: *text
`
	objs, diags := Decode("t.yaml", []byte(data), LoadOptions{})
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %q", diagStrings(diags))
	}
	cm := objs[0].(*ConfigMap)
	if got := cm.Metadata.Annotations; got["app"] != "web" || got["tier"] != "back" || len(got) != 2 {
		t.Errorf("merged annotations = %v, want app=web and the explicit tier=back", got)
	}
	if cm.Data["a"] != "hello" || cm.Data["b"] != "hello" {
		t.Errorf("aliased data = %v", cm.Data)
	}
}

func TestDecodeEveryPrefixExplainsItself(t *testing.T) {
	// Every prefix of a real manifest decodes to objects or says why not; none crashes.
	data := []byte(minimalDeployment + "        resources:\n          limits: {memory: 64Mi}\n")
	for i := range len(data) + 1 {
		prefix := data[:i]
		objs, diags := Decode("t.yaml", prefix, LoadOptions{})
		if len(objs) == 0 && len(diags) == 0 && len(bytes.TrimSpace(prefix)) > 0 {
			t.Errorf("prefix %q: no objects and no diagnostics", prefix)
		}
		if i == len(data) && (len(objs) != 1 || len(diags) != 0) {
			t.Errorf("whole manifest: %d objects, %q", len(objs), diagStrings(diags))
		}
	}
}

// TestLoadKubectlGetOutput loads what `kubectl get -o yaml` prints: the fields the
// API server sets (uid, resourceVersion, managedFields, status…) and the defaults
// that ask for what Shoal does anyway load silently; defaults of features Shoal
// lacks warn.
func TestLoadKubectlGetOutput(t *testing.T) {
	set, diags := Load(os.DirFS("testdata/kubectl-get"), LoadOptions{})
	if diags.HasErrors() || set == nil || len(set.Deployments) != 1 || len(set.Services) != 1 {
		t.Fatalf("errors:\n%s", diags.Error())
	}
	want := []string{
		`web.yaml:27: spec.revisionHistoryLimit: warning: not honoured by Shoal`,
		`web.yaml:50: spec.template.spec.containers[0].terminationMessagePath: warning: not honoured by Shoal`,
		`web.yaml:51: spec.template.spec.containers[0].terminationMessagePolicy: warning: not honoured by Shoal`,
		`web.yaml:81: spec.clusterIPs: warning: not honoured by Shoal`,
		`web.yaml:84: spec.ipFamilies: warning: not honoured by Shoal`,
		`web.yaml:86: spec.ipFamilyPolicy: warning: not honoured by Shoal`,
	}
	if got := diagStrings(diags); !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n got  %q\n want %q", got, want)
	}
}

// TestYAML11Values checks that values decode as kubectl reads them (YAML 1.1,
// through sigs.k8s.io/yaml's go-yaml v2): yes and on are true in a boolean
// field, a leading zero is octal, a whole number written 2.0 is an integer.
func TestYAML11Values(t *testing.T) {
	doc := strings.Replace(minimalDeployment, "spec:\n  selector:", "spec:\n  replicas: 2.0\n  selector:", 1) +
		"        volumeMounts:\n" +
		"        - {name: a, mountPath: /a, readOnly: yes}\n" +
		"        - {name: b, mountPath: /b, readOnly: On}\n" +
		"        - {name: c, mountPath: /c, readOnly: n}\n" +
		"      volumes:\n" +
		"      - {name: a, emptyDir: {}}\n" +
		"      - {name: b, configMap: {name: cfg, defaultMode: 0644, optional: y}}\n" +
		"      - {name: c, secret: {secretName: s, defaultMode: 0o440, items: [{key: k, path: k, mode: 0x1ed}]}}\n"
	objs, diags := Decode("t.yaml", []byte(doc), LoadOptions{})
	if len(diags) != 0 || len(objs) != 1 {
		t.Fatalf("diagnostics: %q", diagStrings(diags))
	}
	ps := objs[0].(*Deployment).Spec.Template.Spec
	mounts := ps.Containers[0].VolumeMounts
	if !mounts[0].ReadOnly || !mounts[1].ReadOnly || mounts[2].ReadOnly {
		t.Errorf("readOnly yes, On, n decoded as %v, %v, %v", mounts[0].ReadOnly, mounts[1].ReadOnly, mounts[2].ReadOnly)
	}
	if *objs[0].(*Deployment).Spec.Replicas != 2 {
		t.Errorf("replicas 2.0 decoded as %d", *objs[0].(*Deployment).Spec.Replicas)
	}
	cm, sec := ps.Volumes[1].ConfigMap, ps.Volumes[2].Secret
	if *cm.DefaultMode != 0o644 || !*cm.Optional || *sec.DefaultMode != 0o440 || *sec.Items[0].Mode != 0o755 {
		t.Errorf("defaultMode 0644 = %d, optional y = %v, defaultMode 0o440 = %d, mode 0x1ed = %d",
			*cm.DefaultMode, *cm.Optional, *sec.DefaultMode, *sec.Items[0].Mode)
	}
}

func TestGroupedWarnings(t *testing.T) {
	ds := Diagnostics{
		{Severity: SeverityWarning, File: "a.yaml", Line: 12, Path: "spec.template.spec.serviceAccountName", Message: "not honoured by Shoal", Feature: "serviceAccount"},
		{Severity: SeverityError, File: "a.yaml", Line: 13, Path: "spec.replica", Message: `unknown field "replica"`},
		{Severity: SeverityError, File: "a.yaml", Line: 14, Path: "spec.replica", Message: `unknown field "replica"`},
		{Severity: SeverityWarning, File: "b.yaml", Line: 3, Path: "spec.template.spec.serviceAccount", Message: "not honoured by Shoal", Feature: "serviceAccount"},
		{Severity: SeverityWarning, File: "b.yaml", Line: 9, Path: "spec.paused", Message: "not honoured by Shoal", Feature: "spec.paused"},
		{Severity: SeverityWarning, File: "c.yaml", Line: 1, Message: "loose"},
		{Severity: SeverityWarning, File: "c.yaml", Line: 2, Message: "loose"},
	}
	var got []string
	for _, g := range ds.Grouped() {
		got = append(got, g.String())
	}
	want := []string{
		`serviceAccount: warning: not honoured by Shoal: Shoal gives instances no service account and no Kubernetes API token (×2, first at a.yaml:12)`,
		`a.yaml:13: spec.replica: unknown field "replica"`,
		`a.yaml:14: spec.replica: unknown field "replica"`,
		`b.yaml:9: spec.paused: warning: not honoured by Shoal`,
		`c.yaml:1: warning: loose`,
		`c.yaml:2: warning: loose`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Grouped:\n got  %q\n want %q", got, want)
	}
}
