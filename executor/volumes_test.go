package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareConfigMapVolume(t *testing.T) {
	inst := t.TempDir()
	s := &InstanceSpec{ID: "i", Volumes: []Volume{
		{Name: "cfg", Kind: VolumeConfigMap, Files: []File{
			{Path: "app.conf", Mode: 0o644, Data: []byte("a=1")},
			{Path: "nested/dir/key", Mode: 0o600, Data: []byte("k")},
		}},
		{Name: "scratch", Kind: VolumeEmptyDir},
	}}
	for range 2 { // a repeated Start rewrites files, including read-only ones
		if err := prepareVolumes(inst, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range s.Volumes[0].Files {
		p := filepath.Join(volumeDir(inst, "cfg"), f.Path)
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != string(f.Data) || fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: %q, mode %v, %v; want %q, mode %v", f.Path, b, fi.Mode().Perm(), err, f.Data, f.Mode)
		}
	}
	if fi, err := os.Stat(volumeDir(inst, "scratch")); err != nil || fi.Mode().Perm() != 0o777 {
		t.Errorf("emptyDir: %v, %v; want a directory anyone can write", fi, err)
	}
	if err := removeInstanceDir(inst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inst); !os.IsNotExist(err) {
		t.Errorf("instance dir left: %v", err)
	}
}

// TestSubPathDoesNotFollowSymlinksOut plants the symlink a hostile container could write
// in a shared emptyDir: the mount source must stay inside the volume.
func TestSubPathDoesNotFollowSymlinksOut(t *testing.T) {
	inst := t.TempDir()
	s := &InstanceSpec{ID: "i", Volumes: []Volume{{Name: "data", Kind: VolumeEmptyDir}},
		Containers: []ContainerSpec{{Name: "app", Image: "img", Mounts: []Mount{{Volume: "data", Path: "/data", SubPath: "evil/passwd", ReadOnly: true}}}}}
	vol := volumeDir(inst, "data")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(vol, "evil")); err != nil {
		t.Fatal(err)
	}
	mounts, err := ociMounts(inst, s, &s.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || !strings.HasPrefix(mounts[0].Source, vol+"/") {
		t.Fatalf("mount source %+v escapes the volume %s", mounts, vol)
	}
	if mounts[0].Destination != "/data" || mounts[0].Options[len(mounts[0].Options)-1] != "ro" {
		t.Errorf("mount %+v, want read-only at /data", mounts[0])
	}
}
