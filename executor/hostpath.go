package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	"github.com/shoalhq/shoal/spec"
	"golang.org/x/sys/unix"
)

// A hostPath volume is bound, once per instance start, from the node onto the volume's
// directory under the instance directory, and from there into the containers like any
// other volume. The host path is resolved inside the allowed directory that holds it,
// without leaving it by a symlink (a container that can write there could plant one
// pointing at /), and bound from the opened file descriptor, so nothing can swap the
// path between the check and the mount. The bind is not recursive: mounts below the
// host path are not seen.

// prepareHostPaths binds every hostPath volume of s that is not bound yet.
func prepareHostPaths(instanceDir string, s *InstanceSpec, p Permissions) error {
	for _, v := range s.Volumes {
		if v.Kind != VolumeHostPath {
			continue
		}
		prefix := p.hostPathPrefix(v.HostPath)
		if prefix == "" {
			return fmt.Errorf("volume %s: %w: host path %s", v.Name, ErrForbidden, v.HostPath)
		}
		if err := bindHostPath(volumeDir(instanceDir, v.Name), prefix, v); err != nil {
			return fmt.Errorf("volume %s: host path %s: %w", v.Name, v.HostPath, err)
		}
	}
	return nil
}

func bindHostPath(target, prefix string, v Volume) error {
	if mounted, err := mountinfo.Mounted(target); err != nil && !errors.Is(err, fs.ErrNotExist) || mounted {
		return err
	}
	rel := path.Join(".", strings.TrimPrefix(v.HostPath, prefix))
	src, err := openHostPath(prefix, rel, v.HostPathType)
	if err != nil {
		return err
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if err := checkHostPathType(st.Mode, v.HostPathType); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(target, 0o700)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			err = f.Close()
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fdPath := "/proc/self/fd/" + strconv.Itoa(int(src.Fd()))
	if err := unix.Mount(fdPath, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind onto %s: %w", target, err)
	}
	return nil
}

// openHostPath opens rel inside root without following a symlink out of it, creating it
// first when the type says so (a directory 0755 or an empty file 0644, as the kubelet does).
func openHostPath(root, rel, kind string) (*os.File, error) {
	f, err := pathrs.OpenInRoot(root, rel)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	switch kind {
	case spec.HostPathDirectoryOrCreate:
		if err := pathrs.MkdirAll(root, rel, 0o755); err != nil {
			return nil, err
		}
	case spec.HostPathFileOrCreate:
		dir, name := path.Dir(rel), path.Base(rel)
		if err := pathrs.MkdirAll(root, dir, 0o755); err != nil {
			return nil, err
		}
		parent, err := pathrs.OpenInRoot(root, dir)
		if err != nil {
			return nil, err
		}
		defer parent.Close()
		// O_EXCL and O_NONBLOCK: whatever appeared there since the lookup above (a FIFO
		// a container planted would block a plain open forever) is left alone and
		// checked by type below.
		fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
		switch {
		case err == nil:
			unix.Close(fd)
		case !errors.Is(err, unix.EEXIST):
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	default:
		return nil, err
	}
	return pathrs.OpenInRoot(root, rel)
}

// checkHostPathType checks what is at a host path against the volume's type.
func checkHostPathType(mode uint32, kind string) error {
	want := map[string]uint32{
		spec.HostPathDirectory: unix.S_IFDIR, spec.HostPathDirectoryOrCreate: unix.S_IFDIR,
		spec.HostPathFile: unix.S_IFREG, spec.HostPathFileOrCreate: unix.S_IFREG,
		spec.HostPathSocket: unix.S_IFSOCK, spec.HostPathCharDevice: unix.S_IFCHR, spec.HostPathBlockDevice: unix.S_IFBLK,
	}[kind]
	if want != 0 && mode&unix.S_IFMT != want {
		return fmt.Errorf("%w: not a %s", ErrConfig, kind)
	}
	return nil
}
