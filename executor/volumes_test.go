package executor

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// TestSubPathMountsFromAgentOwnedTarget checks that runc is never given a path inside a
// volume for a subPath (a container could swap it for a symlink), but the agent's own bind
// target, and that the bind is recorded for every later start.
func TestSubPathMountsFromAgentOwnedTarget(t *testing.T) {
	inst := t.TempDir()
	s := &InstanceSpec{ID: "i", Volumes: []Volume{{Name: "data", Kind: VolumeEmptyDir}, {Name: "cfg", Kind: VolumeConfigMap}},
		Containers: []ContainerSpec{{Name: "app", Image: "img", Mounts: []Mount{
			{Volume: "data", Path: "/shared"},
			{Volume: "data", Path: "/data", SubPath: "x/y", ReadOnly: true},
			{Volume: "cfg", Path: "/etc/app.conf", SubPath: "app.conf", ReadOnly: true},
		}}}}
	mounts, binds := ociMounts(inst, s, &s.Containers[0])
	want := []string{volumeDir(inst, "data"), subPathTarget(inst, "app", 1), subPathTarget(inst, "app", 2)}
	for i, m := range mounts {
		if m.Source != want[i] {
			t.Errorf("mount %d source %s, want %s", i, m.Source, want[i])
		}
	}
	if strings.HasPrefix(mounts[1].Source, volumeDir(inst, "data")) || mounts[1].Options[3] != "ro" {
		t.Errorf("subPath mount %+v: want a read-only bind from outside the volume", mounts[1])
	}
	wantBinds := []subPathBind{{Index: 1, Volume: "data", SubPath: "x/y", Create: true}, {Index: 2, Volume: "cfg", SubPath: "app.conf"}}
	if !slices.Equal(binds, wantBinds) {
		t.Errorf("binds %+v, want %+v", binds, wantBinds)
	}
}

// TestOlderSubPathSpecRefused checks the spec of a container created before subPaths were
// bound through the agent's targets: its source inside a volume must not reach runc again.
func TestOlderSubPathSpecRefused(t *testing.T) {
	inst := t.TempDir()
	s := &InstanceSpec{ID: "i", Volumes: []Volume{{Name: "data", Kind: VolumeEmptyDir}},
		Containers: []ContainerSpec{{Name: "app", Image: "img", Mounts: []Mount{{Volume: "data", Path: "/shared"}, {Volume: "data", Path: "/data", SubPath: "x"}}}}}
	mounts, _ := ociMounts(inst, s, &s.Containers[0])
	if err := checkMountSources(inst, mounts); err != nil {
		t.Errorf("current spec refused: %v", err)
	}
	mounts[1].Source = filepath.Join(volumeDir(inst, "data"), "x")
	if err := checkMountSources(inst, mounts); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("spec binding %s: %v, want ErrUnsafePath", mounts[1].Source, err)
	}
}
