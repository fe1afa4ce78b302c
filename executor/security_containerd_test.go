package executor_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/shoalhq/shoal/examples/imagebuild"
	"github.com/shoalhq/shoal/executor"
	"github.com/shoalhq/shoal/executor/containerdtest"
	"github.com/shoalhq/shoal/spec"
)

// The probe images run executor/internal/secprobe, which prints what the container may
// do. They differ in their USER and /etc/passwd only.
var probeImages struct {
	once sync.Once
	err  error
	refs map[string]string // root, named (app, uid 1000), named-root (admin, uid 0), numeric (1000)
}

// probeImage returns the reference of the probe image of that kind, building them all on
// first use.
func probeImage(t *testing.T, kind string) string {
	t.Helper()
	env(t)
	probeImages.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		binary := filepath.Join(shared.imageDir, "secprobe")
		if probeImages.err = imagebuild.CompileStatic(ctx, "github.com/shoalhq/shoal/executor/internal/secprobe", binary); probeImages.err != nil {
			return
		}
		base, err := imagebuild.Image(binary, imagebuild.Config{})
		if err != nil {
			probeImages.err = err
			return
		}
		passwd := "root:x:0:0:root:/root:/bin/sh\nadmin:x:0:0:admin:/:/bin/sh\napp:x:1000:1000:app:/:/bin/sh\n"
		group := "root:x:0:\napp:x:1000:\nextra:x:3000:app\n"
		probeImages.refs = map[string]string{}
		for kind, user := range map[string]string{"root": "", "named": "app", "named-root": "admin", "numeric": "1000"} {
			img, err := withUser(base, user, map[string]string{"etc/passwd": passwd, "etc/group": group})
			if err != nil {
				probeImages.err = err
				return
			}
			ref := shared.registry.Addr + "/secprobe:" + kind
			if probeImages.err = imagebuild.Push(ctx, img, ref); probeImages.err != nil {
				return
			}
			probeImages.refs[kind] = ref
		}
	})
	if probeImages.err != nil {
		t.Fatalf("probe images: %v", probeImages.err)
	}
	return probeImages.refs[kind]
}

// withUser adds files to an image and sets its USER.
func withUser(base v1.Image, user string, files map[string]string) (v1.Image, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755})
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content))})
		tw.Write([]byte(content))
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Config.User = user
	return mutate.ConfigFile(img, cfg)
}

// probeInstance is an instance of one probe container.
func probeInstance(id, image string, sec executor.Security, env ...executor.EnvVar) executor.InstanceSpec {
	return executor.InstanceSpec{ID: id, Namespace: "default", Workload: id, SpecHash: "h", GracePeriod: time.Second,
		Containers: []executor.ContainerSpec{{Name: "probe", Image: image, Security: sec, Env: env}}}
}

// runProbe starts inst, waits for the probe to exit and returns what it printed.
func runProbe(t *testing.T, rt *executor.Containerd, inst executor.InstanceSpec) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events := rt.Events(ctx)
	if err := rt.Start(ctx, inst); err != nil {
		t.Fatalf("start %s: %v", inst.ID, err)
	}
	for ev := range events {
		if ev.InstanceID == inst.ID && ev.Kind == executor.EventExit {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not exit within a minute", inst.ID)
	}
	// The shim copies the output to the log file on its own: the exit event can come
	// first, on a busy machine. Read until the report is there, or a few seconds passed.
	var out strings.Builder
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out.Reset()
		if err := rt.Logs(ctx, inst.ID, "probe", executor.LogOptions{Tail: -1}, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "uid=") || time.Now().After(deadline) {
			break
		}
	}
	if err := rt.Stop(ctx, inst.ID, 0); err != nil {
		t.Fatal(err)
	}
	report := map[string]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			report[k] = v
		}
	}
	if report["uid"] == "" {
		t.Fatalf("%s printed no report:\n%s", inst.ID, out.String())
	}
	return report
}

// capEff decodes the CapEff line of a report.
func capEff(t *testing.T, report map[string]string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(report["CapEff"], 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", report["CapEff"], err)
	}
	return v
}

// Capability bits, as the kernel numbers them.
const (
	capChown  = 1 << 0
	capNetRaw = 1 << 13
)

// TestDefaultSandboxRefusesPacketSockets is the attack of issue #8: a container on the
// node's network opened an AF_PACKET socket (CAP_NET_RAW) and read every packet of the
// node, a webhook token among them. By default a container now has no NET_RAW, runs
// under the default seccomp filter and with no_new_privs.
func TestDefaultSandboxRefusesPacketSockets(t *testing.T) {
	containerdtest.SkipShort(t)
	rt := newRuntime(t)
	got := runProbe(t, rt, probeInstance("sniffer-0", probeImage(t, "root"), executor.Security{}))
	if got["packet"] != "EPERM" {
		t.Errorf("AF_PACKET socket in a default container: %s, want EPERM", got["packet"])
	}
	if c := capEff(t, got); c&capNetRaw != 0 || c&capChown == 0 {
		t.Errorf("CapEff %s: want the default set, which has CHOWN and not NET_RAW", got["CapEff"])
	}
	if got["Seccomp"] != "2" || got["NoNewPrivs"] != "1" {
		t.Errorf("Seccomp %s, NoNewPrivs %s: want 2 (filter) and 1", got["Seccomp"], got["NoNewPrivs"])
	}
	if got["uid"] != "0" || got["rootfs"] != "ok" {
		t.Errorf("uid %s, rootfs %s: a root image runs as root with a writable root by default", got["uid"], got["rootfs"])
	}
}

// TestRunAsNonRootRefusesRootImages: runAsNonRoot refuses an image whose user is root,
// by number or by a name its /etc/passwd maps to 0, with the reason (CreateContainerConfigError
// in the agent's status); a non-root image, or runAsUser, runs. A refused start leaves
// nothing behind, so the retry fails for the same reason.
func TestRunAsNonRootRefusesRootImages(t *testing.T) {
	containerdtest.SkipShort(t)
	rt := newRuntime(t)
	ctx := context.Background()
	for _, kind := range []string{"root", "named-root"} {
		inst := probeInstance("root-"+kind, probeImage(t, kind), executor.Security{RunAsNonRoot: true})
		for attempt := range 2 {
			err := rt.Start(ctx, inst)
			if !errors.Is(err, executor.ErrConfig) || !strings.Contains(err.Error(), "runAsNonRoot and image "+probeImage(t, kind)+" will run as root (uid 0)") {
				t.Errorf("image %s, attempt %d: Start = %v, want ErrConfig naming runAsNonRoot", kind, attempt+1, err)
			}
		}
	}
	if left, err := rt.List(ctx); err != nil || len(left) != 0 {
		t.Errorf("refused starts left %+v, %v", left, err)
	}
	if got := runProbe(t, rt, probeInstance("named", probeImage(t, "named"), executor.Security{RunAsNonRoot: true})); got["uid"] != "1000" || got["gid"] != "1000" || got["groups"] != "[1000 3000]" {
		t.Errorf("named non-root image: uid %s gid %s groups %s, want 1000, 1000, [1000 3000] from its /etc/passwd and /etc/group", got["uid"], got["gid"], got["groups"])
	}
	if got := runProbe(t, rt, probeInstance("numeric", probeImage(t, "numeric"), executor.Security{RunAsNonRoot: true})); got["uid"] != "1000" || got["gid"] != "1000" {
		t.Errorf("image with USER 1000: uid %s gid %s, want 1000 and the group its /etc/passwd gives", got["uid"], got["gid"])
	}
	uid := int64(4242)
	if got := runProbe(t, rt, probeInstance("run-as", probeImage(t, "root"), executor.Security{RunAsNonRoot: true, RunAsUser: &uid})); got["uid"] != "4242" {
		t.Errorf("root image with runAsUser 4242: uid %s", got["uid"])
	}
}

// TestRunAsUserAndGroups: the container sees runAsUser, runAsGroup, supplementalGroups
// and fsGroup, and fsGroup makes a secret volume (0400 root's by default) readable to it.
func TestRunAsUserAndGroups(t *testing.T) {
	containerdtest.SkipShort(t)
	rt := newRuntime(t)
	uid, gid, fsGroup := int64(1234), int64(5678), int64(8000)
	inst := probeInstance("groups", probeImage(t, "root"), executor.Security{RunAsUser: &uid, RunAsGroup: &gid},
		executor.EnvVar{Name: "PROBE_READ", Value: "/secret/token"}, executor.EnvVar{Name: "PROBE_WRITE", Value: "/scratch"})
	inst.SupplementalGroups, inst.FSGroup = []int64{7000}, &fsGroup
	inst.Volumes = []executor.Volume{
		{Name: "secret", Kind: executor.VolumeSecret, Files: []executor.File{{Path: "token", Mode: 0o400, Data: []byte("s3cret"), Secret: true}}},
		{Name: "scratch", Kind: executor.VolumeEmptyDir},
	}
	inst.Containers[0].Mounts = []executor.Mount{{Volume: "secret", Path: "/secret", ReadOnly: true}, {Volume: "scratch", Path: "/scratch"}}
	got := runProbe(t, rt, inst)
	if got["uid"] != "1234" || got["gid"] != "5678" || got["groups"] != "[5678 7000 8000]" {
		t.Errorf("uid %s gid %s groups %s, want 1234 5678 [5678 7000 8000]", got["uid"], got["gid"], got["groups"])
	}
	if got["read"] != "s3cret" || got["write"] != "ok" {
		t.Errorf("secret volume read %q, emptyDir write %q: fsGroup should grant both", got["read"], got["write"])
	}
	if c := capEff(t, got); c != 0 || got["rootfs"] != "EACCES" {
		t.Errorf("a non-root user keeps no capabilities across exec (CapEff %s) and cannot write / (%s)", got["CapEff"], got["rootfs"])
	}
}

// TestReadOnlyRootFilesystem: the image's filesystem is read-only, volumes are not.
func TestReadOnlyRootFilesystem(t *testing.T) {
	containerdtest.SkipShort(t)
	rt := newRuntime(t)
	inst := probeInstance("ro", probeImage(t, "root"), executor.Security{ReadOnlyRootFilesystem: true}, executor.EnvVar{Name: "PROBE_WRITE", Value: "/scratch"})
	inst.Volumes = []executor.Volume{{Name: "scratch", Kind: executor.VolumeEmptyDir}}
	inst.Containers[0].Mounts = []executor.Mount{{Volume: "scratch", Path: "/scratch"}}
	if got := runProbe(t, rt, inst); got["rootfs"] != "EROFS" || got["write"] != "ok" {
		t.Errorf("rootfs %s, emptyDir %s: want EROFS and ok", got["rootfs"], got["write"])
	}
}

// TestCapabilities: add and drop, ALL included, change what the container holds; a
// capability beyond the default set (NET_RAW back, for sniffing) needs the node's consent.
func TestCapabilities(t *testing.T) {
	containerdtest.SkipShort(t)
	image := probeImage(t, "root")
	addRaw := probeInstance("add-raw", image, executor.Security{CapAdd: []string{"NET_RAW"}})
	if err := newRuntime(t).Start(context.Background(), addRaw); !errors.Is(err, executor.ErrForbidden) || !strings.Contains(err.Error(), "--allow-capability=NET_RAW") {
		t.Errorf("adding NET_RAW on a default node: %v, want ErrForbidden naming --allow-capability=NET_RAW", err)
	}
	rt := newRuntime(t, executor.WithPermissions(executor.Permissions{Capabilities: []string{"NET_RAW"}}))
	got := runProbe(t, rt, addRaw)
	if got["packet"] != "ok" || capEff(t, got)&capNetRaw == 0 {
		t.Errorf("add NET_RAW: packet %s, CapEff %s", got["packet"], got["CapEff"])
	}
	if got := runProbe(t, rt, probeInstance("drop-all", image, executor.Security{CapDrop: []string{"ALL"}})); capEff(t, got) != 0 {
		t.Errorf("drop ALL: CapEff %s", got["CapEff"])
	}
	got = runProbe(t, rt, probeInstance("drop-chown", image, executor.Security{CapDrop: []string{"chown"}}))
	if c := capEff(t, got); c&capChown != 0 || c == 0 {
		t.Errorf("drop chown: CapEff %s, want the default set without CHOWN", got["CapEff"])
	}
}

// TestSeccompProfiles: the default filter refuses keyctl (as Docker's does), Unconfined
// lifts it, and a Localhost profile from the node's directory applies.
func TestSeccompProfiles(t *testing.T) {
	containerdtest.SkipShort(t)
	profiles := t.TempDir()
	os.WriteFile(filepath.Join(profiles, "no-keyctl.json"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	rt := newRuntime(t, executor.WithPermissions(executor.Permissions{SeccompProfileRoot: profiles, SeccompUnconfined: true}))
	image := probeImage(t, "root")
	for _, c := range []struct {
		sec             executor.Security
		keyctl, seccomp string
	}{
		{executor.Security{}, "EPERM", "2"},
		{executor.Security{Seccomp: spec.SeccompUnconfined}, "ok", "0"},
		{executor.Security{Seccomp: spec.SeccompLocalhost, SeccompProfile: "no-keyctl.json"}, "EPERM", "2"},
	} {
		got := runProbe(t, rt, probeInstance("seccomp-"+strings.ToLower(c.sec.Seccomp), image, c.sec))
		if got["keyctl"] != c.keyctl || got["Seccomp"] != c.seccomp {
			t.Errorf("%+v: keyctl %s, Seccomp %s; want %s, %s", c.sec, got["keyctl"], got["Seccomp"], c.keyctl, c.seccomp)
		}
	}
	strict := newRuntime(t)
	for _, c := range []struct {
		sec  executor.Security
		flag string
	}{
		{executor.Security{Seccomp: spec.SeccompLocalhost, SeccompProfile: "no-keyctl.json"}, "--seccomp-profile-root"},
		{executor.Security{Seccomp: spec.SeccompUnconfined}, "--allow-unconfined-seccomp"},
	} {
		if err := strict.Start(context.Background(), probeInstance("strict", image, c.sec)); !errors.Is(err, executor.ErrForbidden) || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s profile on a default node: %v, want ErrForbidden naming %s", c.sec.Seccomp, err, c.flag)
		}
	}
}

// TestNodePermissions: privileged, hostPID and hostPath are refused, with the flag that
// would allow them, by a node that does not allow them, and work on one that does.
func TestNodePermissions(t *testing.T) {
	containerdtest.SkipShort(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "motd"), []byte("from the node"), 0o644)
	// A container allowed a host directory could plant this link to reach the node's /.
	os.Symlink("/", filepath.Join(hostDir, "escape"))
	image := probeImage(t, "root")
	privileged := probeInstance("priv", image, executor.Security{Privileged: true})
	hostPID := probeInstance("hostpid", image, executor.Security{})
	hostPID.HostPID = true
	hostPath := probeInstance("hostpath", image, executor.Security{}, executor.EnvVar{Name: "PROBE_READ", Value: "/host/motd"})
	hostPath.Volumes = []executor.Volume{{Name: "host", Kind: executor.VolumeHostPath, HostPath: hostDir, HostPathType: spec.HostPathDirectory}}
	hostPath.Containers[0].Mounts = []executor.Mount{{Volume: "host", Path: "/host", ReadOnly: true}}

	strict := newRuntime(t)
	for inst, flag := range map[*executor.InstanceSpec]string{&privileged: "--allow-privileged", &hostPID: "--allow-host-pid", &hostPath: "--allow-host-path"} {
		if err := strict.Start(context.Background(), *inst); !errors.Is(err, executor.ErrForbidden) || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s on a strict node: %v, want ErrForbidden naming %s", inst.ID, err, flag)
		}
	}
	if left, err := strict.List(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("refused starts left %+v, %v", left, err)
	}

	open := newRuntime(t, executor.WithPermissions(executor.Permissions{Privileged: true, HostPID: true, HostPaths: []string{hostDir}}))
	if got := runProbe(t, open, privileged); got["Seccomp"] != "0" || got["NoNewPrivs"] != "0" || capEff(t, got)&capNetRaw == 0 {
		t.Errorf("privileged: Seccomp %s, NoNewPrivs %s, CapEff %s", got["Seccomp"], got["NoNewPrivs"], got["CapEff"])
	}
	ownNS, _ := os.Readlink("/proc/self/ns/pid")
	if got := runProbe(t, open, hostPID); got["pidns"] != ownNS {
		t.Errorf("hostPID: pid namespace %s, want the node's %s", got["pidns"], ownNS)
	}
	if got := runProbe(t, open, hostPath); got["read"] != "from the node" {
		t.Errorf("hostPath: read %q", got["read"])
	}
	if _, err := os.Stat(filepath.Join(hostDir, "motd")); err != nil {
		t.Errorf("stopping the instance touched the node's files: %v", err)
	}
	// The link resolves inside the allowed directory, as if it were the root.
	os.MkdirAll(filepath.Join(hostDir, "etc"), 0o755)
	os.WriteFile(filepath.Join(hostDir, "etc", "hostname"), []byte("decoy"), 0o644)
	escape := probeInstance("escape", image, executor.Security{}, executor.EnvVar{Name: "PROBE_READ", Value: "/host/hostname"})
	escape.Volumes = []executor.Volume{{Name: "host", Kind: executor.VolumeHostPath, HostPath: filepath.Join(hostDir, "escape", "etc")}}
	escape.Containers[0].Mounts = []executor.Mount{{Volume: "host", Path: "/host", ReadOnly: true}}
	if got := runProbe(t, open, escape); got["read"] != "decoy" {
		t.Errorf("hostPath through a symlink to /: read %q, want the allowed directory's decoy, not the node's /etc/hostname", got["read"])
	}
	create := probeInstance("create", image, executor.Security{}, executor.EnvVar{Name: "PROBE_WRITE", Value: "/host"})
	create.Volumes = []executor.Volume{{Name: "host", Kind: executor.VolumeHostPath, HostPath: filepath.Join(hostDir, "new", "dir"), HostPathType: spec.HostPathDirectoryOrCreate}}
	create.Containers[0].Mounts = []executor.Mount{{Volume: "host", Path: "/host"}}
	if got := runProbe(t, open, create); got["write"] != "ok" {
		t.Errorf("DirectoryOrCreate: write %q", got["write"])
	}
	if _, err := os.Stat(filepath.Join(hostDir, "new", "dir", "secprobe")); err != nil {
		t.Errorf("the container's file is not on the node: %v", err)
	}
}
