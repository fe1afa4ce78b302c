package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// errUnsupportedEntry is returned when opening a symlink or a submodule: neither has a
// file's contents in the tree, and following a symlink could leave the manifest root.
var errUnsupportedEntry = errors.New("symlinks and submodules are not supported")

var errIsDir = errors.New("is a directory")

// treeFS is a read-only fs.FS over one Git tree, read straight from the object store
// so that loading a revision writes nothing to disk. Every entry has the commit time as
// its modification time. It is not safe for concurrent use: go-git's object store is not.
//
// Only Open is implemented: fs.ReadFile, fs.ReadDir, fs.Stat and fs.WalkDir work
// through it.
type treeFS struct {
	root    *object.Tree
	modTime time.Time
	// sizer reads a blob's size from its header, so that a file too large is refused
	// before it is read; nil means the blob is read for its size.
	sizer blobSizer
	// storeErr is the first error the object store returned other than "no such
	// entry". spec.Load turns read errors into diagnostics; Repo.Load checks storeErr
	// so that a damaged clone is not mistaken for a bad commit.
	storeErr error
}

func newTreeFS(root *object.Tree, modTime time.Time, sizer blobSizer) *treeFS {
	return &treeFS{root: root, modTime: modTime, sizer: sizer}
}

// Open implements fs.FS.
func (f *treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return f.openDir(name, f.root)
	}
	dir, base := path.Split(name)
	parent := f.root
	if dir != "" {
		var err error
		if parent, err = f.root.Tree(strings.TrimSuffix(dir, "/")); err != nil {
			return nil, f.pathError("open", name, err)
		}
	}
	entry, err := parent.FindEntry(base)
	if err != nil {
		return nil, f.pathError("open", name, err)
	}
	switch entry.Mode {
	case filemode.Dir:
		tree, err := f.root.Tree(name)
		if err != nil {
			return nil, f.pathError("open", name, err)
		}
		return f.openDir(name, tree)
	case filemode.Regular, filemode.Deprecated, filemode.Executable:
		file, err := parent.TreeEntryFile(entry)
		if err != nil {
			return nil, f.pathError("open", name, err)
		}
		r, err := file.Reader()
		if err != nil {
			return nil, f.pathError("open", name, err)
		}
		info := entryInfo{fs: f, entry: *entry, size: file.Size}
		return &blobFile{fs: f, path: name, info: &info, r: r}, nil
	default:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errUnsupportedEntry}
	}
}

func (f *treeFS) openDir(name string, tree *object.Tree) (*dirFile, error) {
	entries := make([]fs.DirEntry, len(tree.Entries))
	for i, e := range tree.Entries {
		entries[i] = &entryInfo{fs: f, parent: tree, entry: e, size: -1}
	}
	// Git orders a directory "a" as if it were "a/", after "a.yaml"; fs.ReadDir
	// promises plain name order.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	self := &entryInfo{fs: f, entry: object.TreeEntry{Name: path.Base(name), Mode: filemode.Dir, Hash: tree.Hash}}
	return &dirFile{path: name, info: self, entries: entries}, nil
}

// pathError wraps err for name: a missing entry becomes fs.ErrNotExist, anything else
// is an object-store failure and is remembered in storeErr.
func (f *treeFS) pathError(op, name string, err error) error {
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) ||
		errors.Is(err, object.ErrFileNotFound) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	if f.storeErr == nil {
		f.storeErr = fmt.Errorf("read %s: %w", name, err)
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// entryInfo is both the fs.DirEntry and the fs.FileInfo of a tree entry. A file's size
// needs its blob header, so it is looked up only when Info or Size asks for it.
type entryInfo struct {
	fs     *treeFS
	parent *object.Tree // for the lazy size lookup; nil when size is known
	entry  object.TreeEntry
	size   int64 // -1 until looked up
}

func (e *entryInfo) Name() string               { return e.entry.Name }
func (e *entryInfo) IsDir() bool                { return e.entry.Mode == filemode.Dir }
func (e *entryInfo) Type() fs.FileMode          { return e.Mode().Type() }
func (e *entryInfo) ModTime() time.Time         { return e.fs.modTime }
func (e *entryInfo) Sys() any                   { return nil }
func (e *entryInfo) Info() (fs.FileInfo, error) { return e, nil }
func (e *entryInfo) String() string             { return fs.FormatFileInfo(e) }

func (e *entryInfo) Mode() fs.FileMode {
	switch e.entry.Mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Executable:
		return 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Regular, filemode.Deprecated:
		return 0o444
	default: // a submodule: a commit of another repository, not a file
		return fs.ModeIrregular
	}
}

// Size is the blob size for files; 0 for anything else or if the blob cannot be read
// (which storeErr then records).
func (e *entryInfo) Size() int64 {
	if e.size >= 0 {
		return e.size
	}
	e.size = 0
	if t := e.Mode().Type(); t == 0 || t == fs.ModeSymlink {
		if e.fs.sizer != nil {
			if size, err := e.fs.sizer.EncodedObjectSize(e.entry.Hash); err == nil {
				e.size = size
			} else {
				_ = e.fs.pathError("stat", e.entry.Name, err)
			}
		} else if file, err := e.parent.TreeEntryFile(&e.entry); err == nil {
			e.size = file.Size
		} else {
			_ = e.fs.pathError("stat", e.entry.Name, err)
		}
	}
	return e.size
}

// blobFile is an open file: a stream of its blob.
type blobFile struct {
	fs   *treeFS
	path string
	info *entryInfo
	r    io.ReadCloser
}

func (b *blobFile) Stat() (fs.FileInfo, error) { return b.info, nil }
func (b *blobFile) Close() error               { return b.r.Close() }

func (b *blobFile) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = b.fs.pathError("read", b.path, err)
	}
	return n, err
}

// dirFile is an open directory; its entries were listed when it was opened.
type dirFile struct {
	path    string
	info    *entryInfo
	entries []fs.DirEntry
	offset  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }

func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

// ReadDir implements fs.ReadDirFile with its paging contract: n > 0 returns at most n
// entries and io.EOF at the end; n <= 0 returns all that remain.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if n <= 0 {
		d.offset = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.offset += n
	return rest[:n], nil
}
