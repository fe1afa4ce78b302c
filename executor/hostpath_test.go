package executor

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shoalhq/shoal/spec"
)

// TestOpenHostPathFileOrCreate: a missing file is created, an existing one is opened
// as it is, and a FIFO that appeared at the path (a container with write access to the
// allowed directory can plant one) is opened without blocking and refused by type.
func TestOpenHostPathFileOrCreate(t *testing.T) {
	root := t.TempDir()
	f, err := openHostPath(root, "a/new", spec.HostPathFileOrCreate)
	if err != nil {
		t.Fatalf("missing file: %v", err)
	}
	f.Close()
	if st, err := os.Stat(filepath.Join(root, "a/new")); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("created: %v, %v", st, err)
	}
	if f, err = openHostPath(root, "a/new", spec.HostPathFileOrCreate); err != nil {
		t.Fatalf("existing file: %v", err)
	}
	f.Close()

	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = openHostPath(root, "fifo", spec.HostPathFileOrCreate)
	if err != nil {
		t.Fatalf("fifo: %v", err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := checkHostPathType(st.Mode, spec.HostPathFileOrCreate); err == nil {
		t.Fatal("a FIFO passed as a FileOrCreate hostPath")
	}
}
