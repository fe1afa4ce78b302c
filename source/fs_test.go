package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// commitFS commits files to a fresh upstream and returns the treeFS of that commit.
func commitFS(t *testing.T, files map[string]string, prepare func(work string)) *treeFS {
	t.Helper()
	up := newUpstream(t)
	if prepare != nil {
		prepare(up.Dir)
	}
	hash := up.Commit("fs", files)
	repo, err := git.PlainOpen(up.Bare)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := commit.Tree()
	if err != nil {
		t.Fatal(err)
	}
	sizer, _ := repo.Storer.(blobSizer)
	return newTreeFS(tree, commit.Committer.When, sizer)
}

func TestTreeFS(t *testing.T) {
	files := map[string]string{
		"a.yaml":         "a",
		"a/inner.yaml":   "inner", // Git sorts dir "a" after "a.yaml"; fs.ReadDir must not
		"a-b.yaml":       "dash",
		"deep/x/y/z.yml": "zzz",
		"run.sh":         "#!/bin/sh\n",
	}
	fsys := commitFS(t, files, nil)
	if err := fstest.TestFS(fsys, "a.yaml", "a/inner.yaml", "a-b.yaml", "deep/x/y/z.yml", "run.sh"); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	info, err := fs.Stat(fsys, "a/inner.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() != 5 || !info.ModTime().Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || info.Mode() != 0o444 {
		t.Errorf("Stat(a/inner.yaml) = size %d, mtime %v, mode %v", info.Size(), info.ModTime(), info.Mode())
	}
	for _, tc := range []struct {
		name string
		want error
	}{
		{"missing.yaml", fs.ErrNotExist},
		{"a/missing.yaml", fs.ErrNotExist},
		{"nope/inner.yaml", fs.ErrNotExist},
		{"a.yaml/inner.yaml", fs.ErrNotExist},
		{"../a.yaml", fs.ErrInvalid},
		{"/a.yaml", fs.ErrInvalid},
		{"a//inner.yaml", fs.ErrInvalid},
	} {
		if _, err := fsys.Open(tc.name); !errors.Is(err, tc.want) {
			t.Errorf("Open(%q): %v, want %v", tc.name, err, tc.want)
		}
	}
	if fsys.storeErr != nil {
		t.Errorf("missing entries recorded as a store error: %v", fsys.storeErr)
	}
}

// A symlink could point out of the manifest root, so it is listed but not followed.
func TestTreeFSRefusesSymlinks(t *testing.T) {
	fsys := commitFS(t, map[string]string{"real.yaml": "x"}, func(work string) {
		if err := os.Symlink("/etc/passwd", filepath.Join(work, "link.yaml")); err != nil {
			t.Fatal(err)
		}
	})
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil || len(entries) != 2 {
		t.Fatalf("ReadDir: %v, %v", entries, err)
	}
	if entries[0].Name() != "link.yaml" || entries[0].Type() != fs.ModeSymlink {
		t.Errorf("entry %v: want link.yaml as a symlink", entries[0])
	}
	if _, err := fs.ReadFile(fsys, "link.yaml"); !errors.Is(err, errUnsupportedEntry) {
		t.Errorf("ReadFile(link.yaml): %v, want errUnsupportedEntry", err)
	}
}
