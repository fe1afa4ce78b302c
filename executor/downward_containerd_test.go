package executor_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/spec"
)

// TestDownwardAPIInAContainer runs an instance on a real containerd with a pod network and
// asks the container what it sees: the Downward API in its environment (uid, a label, its
// pod and host address, its memory limit in MiB), a downwardAPI volume, and a projected
// volume of a ConfigMap, a Secret and Downward API files, on a tmpfs since it holds a
// secret.
func TestDownwardAPIInAContainer(t *testing.T) {
	_, hello := env(t)
	n := newPodNode(t)
	rt := n.runtime(t, n.pn)
	ctx := context.Background()
	podIP := netip.MustParseAddr("10.244.3.61") // as the agent chooses it
	field := func(name, path string) spec.EnvVar {
		return spec.EnvVar{Name: name, ValueFrom: &spec.EnvVarSource{FieldRef: &spec.ObjectFieldSelector{FieldPath: path}}}
	}
	set := &spec.Set{
		ConfigMaps: []*spec.ConfigMap{{Metadata: spec.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"greeting": "bonjour"}}},
		Secrets:    []*spec.Secret{{Metadata: spec.ObjectMeta{Name: "creds", Namespace: "default"}, Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	d := &spec.Deployment{
		Metadata: spec.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: spec.DeploymentSpec{Template: spec.PodTemplate{
			Metadata: spec.ObjectMeta{Labels: map[string]string{"app": "hello", "tier": "web"}},
			Spec: spec.PodSpec{
				Containers: []spec.Container{{
					Name: "app", Image: hello[1],
					Resources: spec.Resources{Limits: map[string]spec.Quantity{"memory": spec.MustQuantity("96Mi")}},
					Env: []spec.EnvVar{
						{Name: "LISTEN", Value: ":8080"},
						field("UID", "metadata.uid"),
						field("APP", "metadata.labels['app']"),
						field("POD_IP", "status.podIP"),
						field("HOST_IP", "status.hostIP"),
						{Name: "MEM_MI", ValueFrom: &spec.EnvVarSource{ResourceFieldRef: &spec.ResourceFieldSelector{
							Resource: "limits.memory", Divisor: ptrTo(spec.MustQuantity("1Mi"))}}},
					},
					VolumeMounts: []spec.VolumeMount{{Name: "info", MountPath: "/etc/podinfo"}, {Name: "all", MountPath: "/etc/all"}},
				}},
				Volumes: []spec.Volume{
					{Name: "info", DownwardAPI: &spec.DownwardAPIVolumeSource{Items: []spec.DownwardAPIVolumeFile{
						{Path: "labels", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.labels"}},
						{Path: "cpu", ResourceFieldRef: &spec.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: ptrTo(spec.MustQuantity("1m"))}},
					}}},
					{Name: "all", Projected: &spec.ProjectedVolumeSource{Sources: []spec.VolumeProjection{
						{ConfigMap: &spec.ConfigMapProjection{Name: "cfg"}},
						{Secret: &spec.SecretProjection{Name: "creds", Items: []spec.KeyToPath{{Key: "password", Path: "db/password"}}}},
						{DownwardAPI: &spec.DownwardAPIProjection{Items: []spec.DownwardAPIVolumeFile{
							{Path: "namespace", FieldRef: &spec.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
					}}},
				},
			},
		}},
	}
	inst, err := executor.Resolve(set, d, "hello-dwn-0", "node-a", "0123abcd",
		executor.WithPodIP(podIP.String()), executor.WithHostIP("192.0.2.10"),
		executor.WithNodeAllocatable(executor.NodeAllocatable{MilliCPU: 3000, MemoryBytes: 8 << 30}))
	if err != nil {
		t.Fatal(err)
	}
	inst.Addr = podIP
	inst.GracePeriod = 2e9
	if err := rt.EnsureImage(ctx, hello[1], executor.PullAlways); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatal(err)
	}
	defer n.stopAll(t, rt, inst.ID)
	states, err := rt.List(ctx)
	if err != nil || len(states) != 1 || states[0].Addr != podIP {
		t.Fatalf("List = %+v, %v; want the instance at %v", states, err, podIP)
	}
	base := fmt.Sprintf("http://%s:8080", podIP)
	for _, c := range []struct{ path, want string }{
		{"/env/UID", executor.InstanceUID("hello-dwn-0")},
		{"/env/APP", "hello"},
		{"/env/POD_IP", states[0].Addr.String()},
		{"/env/HOST_IP", "192.0.2.10"},
		{"/env/MEM_MI", "96"},
		{"/file?path=/etc/podinfo/labels", "app=\"hello\"\ntier=\"web\""},
		{"/file?path=/etc/podinfo/cpu", "3000"}, // no CPU limit: the node's allocatable, in millicores
		{"/file?path=/etc/all/greeting", "bonjour"},
		{"/file?path=/etc/all/db/password", "s3cret"},
		{"/file?path=/etc/all/namespace", "default"},
	} {
		if got := n.get(t, base+c.path); got != c.want {
			t.Errorf("GET %s = %q, want %q", c.path, got, c.want)
		}
	}
	all := filepath.Join(stateDirOf(t, rt), "instances", inst.ID, "volumes", "all")
	if mounts, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(all)); len(mounts) != 1 || mounts[0].FSType != "tmpfs" {
		t.Errorf("projected volume with a secret: mounts %+v, want one tmpfs", mounts)
	}
	if fi, err := os.Stat(filepath.Join(all, "db", "password")); err != nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("projected secret file: %v, %v; want mode 0400", fi, err)
	}
}

func ptrTo[T any](v T) *T { return &v }
