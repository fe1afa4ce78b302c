package executor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// volumeWithLinks is a volume as a hostile container could leave it: directories, a file,
// and symlinks out of the volume, inside it, and to nothing. outside is a host directory
// with a secret the links point at.
func volumeWithLinks(t *testing.T) (vol, outside string) {
	t.Helper()
	vol, outside = filepath.Join(t.TempDir(), "vol"), t.TempDir()
	must(t, os.WriteFile(filepath.Join(outside, "shadow"), []byte("host secret"), 0o600))
	must(t, os.MkdirAll(filepath.Join(vol, "a/b"), 0o755))
	must(t, os.WriteFile(filepath.Join(vol, "a/file"), []byte("in volume"), 0o644))
	for link, to := range map[string]string{
		"root":       "/",
		"abs":        outside,
		"a/up":       "../../" + filepath.Base(outside),
		"a/inside":   "b",
		"a/dangling": "nowhere",
		"a/b/last":   outside + "/shadow",
	} {
		must(t, os.Symlink(to, filepath.Join(vol, link)))
	}
	return vol, outside
}

func TestOpenInRoot(t *testing.T) {
	vol, _ := volumeWithLinks(t)
	for _, tc := range []struct {
		rel       string
		isDir     bool
		unsafe    string // the component the refusal names; "" for no refusal
		notExists bool
	}{
		{rel: "a", isDir: true},
		{rel: "a/b", isDir: true},
		{rel: "./a//b/", isDir: true},
		{rel: "a/file"},
		{rel: "root", unsafe: `"root" is a symlink`},
		{rel: "root/etc", unsafe: `"root" is a symlink`},
		{rel: "abs/shadow", unsafe: `"abs" is a symlink`},
		{rel: "a/up/shadow", unsafe: `"a/up" is a symlink`},
		{rel: "a/inside", unsafe: `"a/inside" is a symlink`}, // stricter than Kubernetes
		{rel: "a/dangling", unsafe: `"a/dangling" is a symlink`},
		{rel: "a/b/last", unsafe: `"a/b/last" is a symlink`},
		{rel: "a/../root", unsafe: "steps up"},
		{rel: "..", unsafe: "steps up"},
		{rel: "a/file/x", unsafe: `"a/file" is not a directory`},
		{rel: "a/missing", notExists: true},
	} {
		fd, isDir, err := openInRoot(vol, tc.rel, 0)
		switch {
		case tc.unsafe != "":
			if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), tc.unsafe) {
				t.Errorf("%s: %v, want ErrUnsafePath naming %s", tc.rel, err, tc.unsafe)
			}
		case tc.notExists:
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s: %v, want not found", tc.rel, err)
			}
		case err != nil || isDir != tc.isDir:
			t.Errorf("%s: dir %v, %v; want dir %v", tc.rel, isDir, err, tc.isDir)
		}
		if err == nil {
			unix.Close(fd)
		}
	}
}

// TestOpenInRootCreates makes a missing subPath as Kubernetes does for a writable volume,
// with the volume's mode past the umask, but creates nothing through a symlink.
func TestOpenInRootCreates(t *testing.T) {
	vol, outside := volumeWithLinks(t)
	old := unix.Umask(0o022)
	defer unix.Umask(old)
	fd, isDir, err := openInRoot(vol, "new/deeper", 0o777)
	if err != nil || !isDir {
		t.Fatalf("create new/deeper: dir %v, %v", isDir, err)
	}
	unix.Close(fd)
	for _, p := range []string{"new", "new/deeper"} {
		if fi, err := os.Lstat(filepath.Join(vol, p)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o777 {
			t.Errorf("%s: %v, %v; want a directory with mode 0777", p, fi.Mode(), err)
		}
	}
	for _, rel := range []string{"abs/made", "a/dangling/made", "root/tmp/made"} {
		if _, _, err := openInRoot(vol, rel, 0o777); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("create %s: %v, want ErrUnsafePath", rel, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(outside, "made")); !os.IsNotExist(err) {
		t.Errorf("created through a symlink outside the volume: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(vol, "a/nowhere")); !os.IsNotExist(err) {
		t.Errorf("created the target of a dangling link: %v", err)
	}
}

// TestWriteVolumeFileRefusesPlantedSymlinks plants, in a volume Shoal writes ConfigMap or
// Secret files into, the links a container with write access could leave: files must not
// be written, and host files not replaced, through them.
func TestWriteVolumeFileRefusesPlantedSymlinks(t *testing.T) {
	vol, outside := volumeWithLinks(t)
	for _, rel := range []string{"abs/shadow", "a/up/x", "root/tmp/x", "a/dangling/x"} {
		err := writeVolumeFile(vol, File{Path: rel, Mode: 0o644, Data: []byte("pwned")})
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("write %s: %v, want ErrUnsafePath", rel, err)
		}
	}
	// A link as the file itself is replaced by the file, and its target left alone.
	if err := writeVolumeFile(vol, File{Path: "a/b/last", Mode: 0o640, Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "shadow")); string(b) != "host secret" {
		t.Errorf("host file now %q", b)
	}
	fi, err := os.Lstat(filepath.Join(vol, "a/b/last"))
	if b, _ := os.ReadFile(filepath.Join(vol, "a/b/last")); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 || string(b) != "new" {
		t.Errorf("a/b/last: %v %q, %v; want a regular file with mode 0640", fi.Mode(), b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("host directory holds %v, want only shadow", entries)
	}
}

// TestBindInRoot binds subPaths the way every container start does, and rebinds after a
// container changed the volume: a swap to a symlink is refused and leaves nothing bound.
func TestBindInRoot(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("bind mounts need root (skipped with -short or as non-root)")
	}
	vol, outside := volumeWithLinks(t)
	targets := t.TempDir()
	dirTarget, fileTarget := filepath.Join(targets, "app/0"), filepath.Join(targets, "app/1")
	t.Cleanup(func() { unmountAll(dirTarget); unmountAll(fileTarget) })

	must(t, bindInRoot(vol, "a/b", dirTarget, 0))
	must(t, os.WriteFile(filepath.Join(dirTarget, "through-bind"), []byte("x"), 0o644))
	if _, err := os.Stat(filepath.Join(vol, "a/b/through-bind")); err != nil {
		t.Errorf("directory bind does not show the subPath: %v", err)
	}
	must(t, bindInRoot(vol, "a/file", fileTarget, 0))
	if b, err := os.ReadFile(fileTarget); err != nil || string(b) != "in volume" {
		t.Errorf("file bind reads %q, %v", b, err)
	}
	// Rebinding replaces, never stacks.
	must(t, bindInRoot(vol, "a/b", dirTarget, 0))
	if ms, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dirTarget)); len(ms) != 1 {
		t.Errorf("%d mounts on %s after a rebind, want 1", len(ms), dirTarget)
	}

	// The container swaps the subPath for a link to the host's / and the file for a
	// directory; the next start refuses the first and follows the second.
	must(t, os.RemoveAll(filepath.Join(vol, "a/b")))
	must(t, os.Symlink("/", filepath.Join(vol, "a/b")))
	if err := bindInRoot(vol, "a/b", dirTarget, 0); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("rebind of a swapped subPath: %v, want ErrUnsafePath", err)
	}
	if mounted, _ := mountinfo.Mounted(dirTarget); mounted {
		t.Errorf("%s still mounted after a refused rebind", dirTarget)
	}
	must(t, os.Remove(filepath.Join(vol, "a/file")))
	must(t, os.Mkdir(filepath.Join(vol, "a/file"), 0o755))
	must(t, bindInRoot(vol, "a/file", fileTarget, 0))
	if fi, err := os.Stat(fileTarget); err != nil || !fi.IsDir() {
		t.Errorf("bind of a subPath that became a directory: %v, %v", fi, err)
	}
	must(t, removeInstanceDir(targets))
	if ms, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(targets)); len(ms) != 0 {
		t.Errorf("mounts left: %+v", ms)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "shadow")); string(b) != "host secret" {
		t.Errorf("host file now %q", b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkBindInRoot is the cost a subPath adds to every container start: open each
// component, unmount the previous bind, bind again.
func BenchmarkBindInRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("bind mounts need root")
	}
	vol, target := b.TempDir(), filepath.Join(b.TempDir(), "app/0")
	if err := os.MkdirAll(filepath.Join(vol, "a/b/c"), 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unmountAll(target) })
	for b.Loop() {
		if err := bindInRoot(vol, "a/b/c", target, 0); err != nil {
			b.Fatal(err)
		}
	}
}
