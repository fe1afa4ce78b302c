package mounts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestUnmountUnderNestedMounts(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs, which needs root (skipped with -short)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("mounting a tmpfs needs root; run the tests as root (CI does)")
	}
	dir := t.TempDir()
	outer, inner := filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(outer, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{outer, inner} {
		os.MkdirAll(p, 0o700)
		if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { unix.Unmount(inner, unix.MNT_DETACH); unix.Unmount(outer, unix.MNT_DETACH) })
	if err := UnmountUnder(dir); err != nil {
		t.Fatal(err)
	}
	if ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir)); len(ms) != 0 {
		t.Errorf("%d mounts left under %s", len(ms), dir)
	}
	if err := UnmountUnder(filepath.Join(dir, "nothing-here")); err != nil {
		t.Errorf("nothing to unmount: %v", err)
	}
}
