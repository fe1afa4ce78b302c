package spec

import (
	"reflect"
	"testing"
)

func decodeOne[T Object](t *testing.T, yaml string) T {
	t.Helper()
	objs, diags := Decode("t.yaml", []byte(yaml), LoadOptions{})
	if diags.HasErrors() || len(objs) != 1 {
		t.Fatalf("Decode: %d objects, %q", len(objs), diagStrings(diags))
	}
	return objs[0].(T)
}

func TestDeploymentDefaults(t *testing.T) {
	d := decodeOne[*Deployment](t, withContainer(
		"ports: [{containerPort: 80}]",
		"resources: {limits: {cpu: 500m, memory: 1Gi}, requests: {cpu: 100m}}",
		"livenessProbe: {httpGet: {port: 80}}",
		"readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 3}",
	)+indent(6, []string{"volumes: [{name: c, configMap: {name: c}}, {name: s, secret: {secretName: s, defaultMode: 0400}}]"}))
	c := d.Spec.Template.Spec.Containers[0]
	vols := d.Spec.Template.Spec.Volumes
	checks := []struct {
		what      string
		got, want any
	}{
		{"namespace", d.Metadata.Namespace, "default"},
		{"replicas", *d.Spec.Replicas, int32(1)},
		{"strategy", d.Spec.Strategy.Type, StrategyRollingUpdate},
		{"maxSurge", *d.Spec.Strategy.RollingUpdate.MaxSurge, FromString("25%")},
		{"maxUnavailable", *d.Spec.Strategy.RollingUpdate.MaxUnavailable, FromString("25%")},
		{"progressDeadlineSeconds", *d.Spec.ProgressDeadlineSeconds, int32(600)},
		{"terminationGracePeriodSeconds", *d.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(30)},
		{"imagePullPolicy", c.ImagePullPolicy, PullIfNotPresent},
		{"port protocol", c.Ports[0].Protocol, ProtocolTCP},
		{"cpu request kept", c.Resources.Requests[ResourceCPU].String(), "100m"},
		{"memory request from limit", c.Resources.Requests[ResourceMemory].String(), "1Gi"},
		{"liveness timings", [4]int32{c.LivenessProbe.TimeoutSeconds, c.LivenessProbe.PeriodSeconds, c.LivenessProbe.SuccessThreshold, c.LivenessProbe.FailureThreshold}, [4]int32{1, 10, 1, 3}},
		{"readiness period kept", c.ReadinessProbe.PeriodSeconds, int32(3)},
		{"httpGet path", c.LivenessProbe.HTTPGet.Path, "/"},
		{"httpGet scheme", c.LivenessProbe.HTTPGet.Scheme, "HTTP"},
		{"configMap defaultMode", *vols[0].ConfigMap.DefaultMode, int32(0o644)},
		{"secret defaultMode kept", *vols[1].Secret.DefaultMode, int32(0o400)},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.what, ch.got, ch.want)
		}
	}
}

func TestRecreateGetsNoRollingUpdate(t *testing.T) {
	d := decodeOne[*Deployment](t, withSpec("strategy: {type: Recreate}"))
	if d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("rollingUpdate defaulted for Recreate: %+v", d.Spec.Strategy.RollingUpdate)
	}
}

func TestImagePullPolicyDefault(t *testing.T) {
	tests := []struct{ image, want string }{
		{"nginx", PullAlways},
		{"nginx:latest", PullAlways},
		{"nginx:1.25", PullIfNotPresent},
		{"registry.local:5000/nginx", PullAlways},
		{"registry.local:5000/nginx:1.25", PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", PullAlways},
	}
	for _, tt := range tests {
		c := Container{Image: tt.image}
		defaultContainer(&c)
		if c.ImagePullPolicy != tt.want {
			t.Errorf("%s: imagePullPolicy %s, want %s", tt.image, c.ImagePullPolicy, tt.want)
		}
	}
}

func TestServiceDefaults(t *testing.T) {
	s := decodeOne[*Service](t, serviceHead+"  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 53, protocol: UDP, targetPort: dns}\n")
	if s.Spec.Type != "ClusterIP" || s.Metadata.Namespace != "default" {
		t.Errorf("type %q namespace %q", s.Spec.Type, s.Metadata.Namespace)
	}
	want := []ServicePort{
		{Name: "a", Port: 80, TargetPort: ptr(FromInt(80)), Protocol: ProtocolTCP},
		{Name: "b", Port: 53, TargetPort: ptr(FromString("dns")), Protocol: ProtocolUDP},
	}
	if !reflect.DeepEqual(s.Spec.Ports, want) {
		t.Errorf("ports %+v, want %+v", s.Spec.Ports, want)
	}
}

func TestSecretDefaults(t *testing.T) {
	s := decodeOne[*Secret](t, "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  a: b2xk\n  b: Yg==\nstringData:\n  a: new\n  c: c\n")
	want := map[string][]byte{"a": []byte("new"), "b": []byte("b"), "c": []byte("c")}
	if !reflect.DeepEqual(s.Data, want) || s.StringData != nil || s.Type != "Opaque" {
		t.Errorf("data %q stringData %q type %q", s.Data, s.StringData, s.Type)
	}
}

func TestNamespaceKeepsNoNamespace(t *testing.T) {
	ns := decodeOne[*Namespace](t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
	if ns.Metadata.Namespace != "" || ns.Key() != (Key{Kind: KindNamespace, Name: "shop"}) {
		t.Errorf("namespace %+v", ns.Metadata)
	}
}
