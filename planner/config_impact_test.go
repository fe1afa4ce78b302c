package planner

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/shoalhq/shoal/spec"
)

// configFixture is a revision where a ConfigMap and a Secret change and an optional
// ConfigMap appears, used by Deployments through envFrom, env valueFrom and volumes.
func configFixture() (old, new *spec.Set) {
	yes := true
	envFrom := func(cm string) func(*spec.Deployment) {
		return func(d *spec.Deployment) {
			c := &d.Spec.Template.Spec.Containers[0]
			c.EnvFrom = append(c.EnvFrom, spec.EnvFromSource{ConfigMapRef: &spec.LocalObjRef{Name: cm}})
		}
	}
	secretEnv := func(s string) func(*spec.Deployment) {
		return func(d *spec.Deployment) {
			c := &d.Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, spec.EnvVar{Name: "PASSWORD", ValueFrom: &spec.EnvVarSource{SecretKeyRef: &spec.KeySelector{Name: s, Key: "password"}}})
		}
	}
	volume := func(cm string, optional *bool) func(*spec.Deployment) {
		return func(d *spec.Deployment) {
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes,
				spec.Volume{Name: cm, ConfigMap: &spec.ConfigMapVolumeSource{Name: cm, Optional: optional}})
		}
	}
	secretVolume := func(s string) func(*spec.Deployment) {
		return func(d *spec.Deployment) {
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, spec.Volume{Name: s, Secret: &spec.SecretVolumeSource{SecretName: s}})
		}
	}
	deployments := func(apiImage string) []*spec.Deployment {
		return []*spec.Deployment{
			dep("api", 1, image(apiImage), secretVolume("db-creds")),
			dep("batch", 4),
			dep("cron", 1, volume("feature-flags", &yes)),
			dep("web", 3, envFrom("app-config")),
			dep("worker", 2, volume("app-config", nil), secretEnv("db-creds")),
		}
	}
	old = &spec.Set{
		Deployments: deployments("api:1"),
		ConfigMaps:  []*spec.ConfigMap{configMap("app-config", map[string]string{"level": "info"})},
		Secrets:     []*spec.Secret{secret("db-creds", map[string][]byte{"password": []byte(oldPassword)})},
	}
	new = &spec.Set{
		Deployments: deployments("api:2"),
		ConfigMaps: []*spec.ConfigMap{
			configMap("app-config", map[string]string{"level": "debug"}),
			configMap("feature-flags", map[string]string{"beta": "on"}),
		},
		Secrets: []*spec.Secret{secret("db-creds", map[string][]byte{"password": []byte(newPassword)})},
	}
	return old, new
}

func TestDiffSaysWhichDeploymentsAConfigChangeReplaces(t *testing.T) {
	old, new := configFixture()
	changes := Diff(old, new)
	var out bytes.Buffer
	if err := FormatDiff(&out, changes); err != nil {
		t.Fatal(err)
	}
	for _, secretText := range []string{oldPassword, newPassword} {
		if strings.Contains(out.String(), secretText) {
			t.Fatalf("the diff shows secret content %q:\n%s", secretText, out.String())
		}
	}
	golden(t, "diff-config.golden", out.Bytes())

	byKey := map[string]Change{}
	for _, c := range changes {
		byKey[c.Key.String()] = c
	}
	if _, ok := byKey["Deployment/default/batch"]; ok {
		t.Errorf("batch uses no config and did not change, but is in the diff")
	}
	web := byKey["Deployment/default/web"]
	if web.Action != ActionUpdate || len(web.Fields) != 0 || web.Instances != 3 ||
		!slices.Equal(web.Config, []spec.Key{{Kind: spec.KindConfigMap, Namespace: "default", Name: "app-config"}}) {
		t.Errorf("web changes only through app-config: %+v", web)
	}
	api := byKey["Deployment/default/api"]
	if len(api.Fields) != 1 || api.Instances != 1 || len(api.Config) != 1 || api.Config[0].Name != "db-creds" {
		t.Errorf("api changes its image and through db-creds: %+v", api)
	}
	want := []Replacement{
		{Deployment: spec.Key{Kind: spec.KindDeployment, Namespace: "default", Name: "web"}, Instances: 3},
		{Deployment: spec.Key{Kind: spec.KindDeployment, Namespace: "default", Name: "worker"}, Instances: 2},
	}
	if got := byKey["ConfigMap/default/app-config"].Replaces; !slices.Equal(got, want) {
		t.Errorf("app-config replaces %+v, want %+v", got, want)
	}

	// A change of the template alone names no config.
	if c := Diff(&spec.Set{Deployments: []*spec.Deployment{dep("web", 2)}}, &spec.Set{Deployments: []*spec.Deployment{dep("web", 2, image("web:2"))}}); len(c) != 1 || c[0].Config != nil || c[0].Instances != 2 {
		t.Errorf("image change: %+v", c)
	}
	// Config nobody uses replaces nothing.
	if c := Diff(&spec.Set{ConfigMaps: []*spec.ConfigMap{configMap("x", nil)}}, &spec.Set{ConfigMaps: []*spec.ConfigMap{configMap("x", map[string]string{"a": "b"})}}); len(c) != 1 || c[0].Replaces != nil {
		t.Errorf("unused ConfigMap: %+v", c)
	}
}
