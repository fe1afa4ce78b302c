package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Paths below a volume root are opened here, never by a path string a container could
// have changed. A container can write symlinks into an emptyDir; if the agent or runc
// followed one when binding a subPath or writing a file, the container would get any host
// path (CVE-2017-1002101 in Kubernetes). So every component is opened with O_NOFOLLOW
// relative to the descriptor of its parent, a symlink anywhere is refused, and a subPath
// is bind-mounted from the opened descriptor onto a path the agent owns
// (instances/<id>/volume-subpaths/<container>/<mount index>), which is what runc binds
// into the container. Containers never see that directory, so what runc binds is what
// the agent opened. The binds are made again before every task start (create, adoption
// of a container without a task, restart), because a container can swap a subPath for a
// symlink between two runs.
//
// Kubernetes follows symlinks that stay inside the volume and refuses those that leave
// it; Shoal refuses every symlink in a subPath or a projected file's path, which is
// simpler to check and loses nothing for the volumes Shoal writes (they hold no symlinks).

// ErrUnsafePath is a subPath or volume file path that Shoal refuses to follow: it crosses
// a symlink, steps up with "..", or names something that is not a directory where one is
// needed. The error names the path and the component.
var ErrUnsafePath = errors.New("unsafe path in volume")

// annotationSubPaths is the OCI spec annotation holding a container's subPath binds, so
// that a restart (which has only the containerd container) can make them again.
const annotationSubPaths = LabelPrefix + "subpaths"

// maxStackedMounts bounds the unmount loop: binds stack when an agent died between a
// mount and its record, but never this deep.
const maxStackedMounts = 64

// subPathBind is one subPath mount of a container, as recorded in its OCI spec.
type subPathBind struct {
	// Index is the mount's position in the container's mounts; it names the bind target.
	Index   int    `json:"index"`
	Volume  string `json:"volume"`
	SubPath string `json:"subPath"`
	// Create makes missing components as directories, as Kubernetes does for writable
	// volumes (emptyDir).
	Create bool `json:"create,omitempty"`
}

// subPathTarget is the agent-owned path a container's subPath mount is bound to.
func subPathTarget(instanceDir, container string, index int) string {
	return filepath.Join(instanceDir, "volume-subpaths", container, strconv.Itoa(index))
}

// withSubPathBinds records a container's subPath binds in its spec, for bindSubPaths.
func withSubPathBinds(binds []subPathBind) oci.SpecOpts {
	if len(binds) == 0 {
		return func(context.Context, oci.Client, *containers.Container, *oci.Spec) error { return nil }
	}
	raw, _ := json.Marshal(binds) // strings, ints and bools always marshal
	return oci.WithAnnotations(map[string]string{annotationSubPaths: string(raw)})
}

// bindSubPaths makes the subPath binds recorded in ct's spec again, from what the volumes
// hold now. It runs before every task start.
func (c *Containerd) bindSubPaths(ctx context.Context, ct containerd.Container, id, name string) error {
	spec, err := ct.Spec(ctx)
	if err != nil {
		return fmt.Errorf("read spec of %s: %w", ct.ID(), err)
	}
	dir := c.instanceDir(id)
	if err := checkMountSources(dir, spec.Mounts); err != nil {
		return err
	}
	raw := spec.Annotations[annotationSubPaths]
	if raw == "" {
		return nil
	}
	var binds []subPathBind
	if err := json.Unmarshal([]byte(raw), &binds); err != nil {
		return fmt.Errorf("spec of %s: annotation %s: %w", ct.ID(), annotationSubPaths, err)
	}
	for _, b := range binds {
		if !isPathComponent(b.Volume) {
			return fmt.Errorf("spec of %s: subPath bind names volume %q", ct.ID(), b.Volume)
		}
		var mode fs.FileMode
		if b.Create {
			mode = emptyDirMode
		}
		if err := bindInRoot(volumeDir(dir, b.Volume), b.SubPath, subPathTarget(dir, name, b.Index), mode); err != nil {
			return fmt.Errorf("volume %s: subPath %q: %w", b.Volume, b.SubPath, err)
		}
	}
	return nil
}

// checkMountSources refuses a spec that binds a path below a volume's root: runc would
// follow whatever that path is at the next start. Containers created before subPaths were
// bound through the agent's own targets have such specs.
func checkMountSources(instanceDir string, mounts []specs.Mount) error {
	volumes := filepath.Join(instanceDir, "volumes") + "/"
	for _, m := range mounts {
		if rest, ok := strings.CutPrefix(m.Source, volumes); ok && strings.Contains(rest, "/") {
			return fmt.Errorf("%w: mount %s binds %s inside a volume, which runc would follow; the container predates safe subPaths: stop the instance to recreate it",
				ErrUnsafePath, m.Destination, m.Source)
		}
	}
	return nil
}

// bindInRoot bind-mounts rel, opened below root without following symlinks, onto target,
// replacing whatever was mounted there. With mkdirMode != 0, missing components of rel
// are created as directories with that mode.
func bindInRoot(root, rel, target string, mkdirMode fs.FileMode) error {
	// Unmount first, so a refused path leaves no bind of what the path named before.
	if err := unmountAll(target); err != nil {
		return err
	}
	fd, isDir, err := openInRoot(root, rel, mkdirMode)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := makeMountPoint(target, isDir); err != nil {
		return err
	}
	// The descriptor's /proc link names the very inode opened above, whatever the path
	// names now.
	if err := unix.Mount(fdPath(fd), target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s onto %s: %w", rel, target, err)
	}
	return nil
}

// openInRoot opens rel, a slash-separated path below the directory root, one component at
// a time with O_NOFOLLOW, and returns an O_PATH descriptor of what it names and whether it
// is a directory. A symlink at any component, a ".." component, or a non-directory before
// the last component is ErrUnsafePath. With mkdirMode != 0, missing components are made as
// directories with exactly that mode.
func openInRoot(root, rel string, mkdirMode fs.FileMode) (fd int, isDir bool, err error) {
	fd, err = unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false, fmt.Errorf("open volume %s: %w", root, err)
	}
	var parts []string
	for _, name := range strings.Split(rel, "/") {
		if name != "" && name != "." {
			parts = append(parts, name)
		}
	}
	walked := ""
	for i, name := range parts {
		walked = pathJoin(walked, name)
		if name == ".." {
			unix.Close(fd)
			return -1, false, fmt.Errorf("%w: %q steps up with ..", ErrUnsafePath, rel)
		}
		next, err := openComponent(fd, name, mkdirMode)
		unix.Close(fd)
		if err != nil {
			return -1, false, fmt.Errorf("%s: %w", walked, err)
		}
		fd = next
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, false, fmt.Errorf("%s: %w", walked, err)
		}
		switch kind := st.Mode & unix.S_IFMT; {
		case kind == unix.S_IFLNK:
			unix.Close(fd)
			return -1, false, fmt.Errorf("%w: %q is a symlink (Shoal follows no symlink in a volume path)", ErrUnsafePath, walked)
		case kind != unix.S_IFDIR && i < len(parts)-1:
			unix.Close(fd)
			return -1, false, fmt.Errorf("%w: %q is not a directory", ErrUnsafePath, walked)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// openComponent opens name in the directory dir without following it, first creating it
// as a directory with mkdirMode when it is missing and mkdirMode != 0.
func openComponent(dir int, name string, mkdirMode fs.FileMode) (int, error) {
	const flags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dir, name, flags, 0)
	if !errors.Is(err, unix.ENOENT) || mkdirMode == 0 {
		return fd, err
	}
	if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	if fd, err = unix.Openat(dir, name, flags, 0); err != nil {
		return -1, err
	}
	// Set the mode through the descriptor, past the umask, and only on a directory: what
	// was made above could have been swapped for anything since.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Chmod(fdPath(fd), uint32(mkdirMode.Perm()))
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// makeMountPoint makes target an empty directory (isDir) or an empty file, replacing an
// empty one of the other kind. It never removes anything that is not empty.
func makeMountPoint(target string, isDir bool) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	if fi, err := os.Lstat(target); err == nil {
		if fi.IsDir() == isDir && (isDir || fi.Mode().IsRegular()) {
			return nil
		}
		if err := os.Remove(target); err != nil {
			return err
		}
	}
	if isDir {
		return os.Mkdir(target, 0o700)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// unmountAll detaches every mount stacked on target; a target that is no mount point (or
// does not exist) is done.
func unmountAll(target string) error {
	for range maxStackedMounts {
		err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmount %s: more than %d mounts stacked", target, maxStackedMounts)
}

// writeInRoot writes data to rel below the directory root with mode, replacing a file
// that was there, creating missing parent directories with dirMode; no component is
// followed if it is a symlink.
func writeInRoot(root, rel string, data []byte, mode, dirMode fs.FileMode) error {
	parent, base := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		parent, base = rel[:i], rel[i+1:]
	}
	if base == "" || base == "." || base == ".." {
		return fmt.Errorf("%w: %q names no file", ErrUnsafePath, rel)
	}
	dir, isDir, err := openInRoot(root, parent, dirMode)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if !isDir {
		return fmt.Errorf("%w: %q is not a directory", ErrUnsafePath, parent)
	}
	// Remove first: an existing read-only file cannot be opened for writing, and a new file
	// gets mode exactly. Unlinking a symlink removes the link, never its target.
	if err := unix.Unlinkat(dir, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err) // the path only: never the content
	}
	return nil
}

// fdPath is the /proc name of one of this process's descriptors.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// pathJoin joins slash-separated components for messages.
func pathJoin(a, b string) string {
	if a == "" {
		return b
	}
	return a + "/" + b
}
