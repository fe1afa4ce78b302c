package spec

import (
	"strings"
	"testing"
	"testing/fstest"
)

// A projected volume's ConfigMaps and Secrets are references like any other: checked to
// exist (unless optional), with a message that says how to fix a missing one, and part of
// the InstanceHash, so that changing one replaces the instances.
func TestProjectedReferences(t *testing.T) {
	web := withContainer("volumeMounts: [{name: all, mountPath: /etc/all}]") + indent(6, []string{
		"volumes:",
		"- name: all",
		"  projected:",
		"    sources:",
		"    - configMap: {name: files}",
		"    - secret: {name: db-creds}",
		"    - secret: {name: maybe, optional: true}",
	})
	files := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: files}\ndata: {app.conf: 'x=1'}\n"
	creds := "apiVersion: v1\nkind: Secret\nmetadata: {name: db-creds}\nstringData: {password: hunter2}\n"

	fsys := fstest.MapFS{"web.yaml": {Data: []byte(web)}, "files.yaml": {Data: []byte(files)}}
	_, diags := Load(fsys, LoadOptions{})
	want := `web.yaml:23: spec.template.spec.volumes[0].projected.sources[1].secret.name: secret "db-creds" not found in namespace "default" of this commit: add it to the repository (encrypted secrets are a coming feature) or mark the reference optional: true`
	if got := diags.Error(); !strings.Contains(got, want) || strings.Contains(got, "maybe") {
		t.Errorf("diagnostics:\n%s\nwant %s, and nothing about the optional Secret", got, want)
	}

	base := map[string]string{"web.yaml": web, "files.yaml": files, "creds.yaml": creds}
	h := hashOf(t, base)
	changed := map[string]string{"web.yaml": web, "files.yaml": files,
		"creds.yaml": strings.Replace(creds, "hunter2", "hunter3", 1)}
	if hashOf(t, changed) == h {
		t.Error("changing a Secret of a projected volume left the InstanceHash as it was")
	}
}
