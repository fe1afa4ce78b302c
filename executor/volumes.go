package executor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/shoalhq/shoal/executor/internal/mounts"
	"golang.org/x/sys/unix"
)

// Volumes live on the host under <state dir>/instances/<id>/volumes/<name> and are bound
// into the containers. Volumes holding a Secret's content (secret volumes, projected
// volumes with a secret source), and emptyDirs with medium Memory, are tmpfs mounts, so
// secret content is never written to a persistent disk.

const (
	// secretTmpfsSlack is room on a secret tmpfs beyond its files (inodes, a later rewrite).
	secretTmpfsSlack = 1 << 20
	// emptyDirMode lets any user in the container write, as Kubernetes does.
	emptyDirMode fs.FileMode = 0o777
)

func volumeDir(instanceDir, name string) string {
	return filepath.Join(instanceDir, "volumes", name)
}

// prepareVolumes creates the host side of every volume of s. It is idempotent: files are
// rewritten and existing tmpfs mounts reused, so Start can repeat it after a crash.
func prepareVolumes(instanceDir string, s *InstanceSpec) error {
	for _, v := range s.Volumes {
		if v.Kind == VolumeHostPath {
			continue // bound by prepareHostPaths
		}
		if err := prepareVolume(volumeDir(instanceDir, v.Name), v); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	return nil
}

func prepareVolume(dir string, v Volume) error {
	mode := fs.FileMode(0o755)
	if v.Kind == VolumeEmptyDir {
		mode = emptyDirMode
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if v.onTmpfs() {
		size := v.SizeLimitBytes
		if size == 0 && !v.Memory {
			// A volume of files: room for them and a little more; an emptyDir with no
			// limit gets the kernel's default.
			size = secretTmpfsSlack
			for _, f := range v.Files {
				size += int64(len(f.Data))
			}
		}
		if err := mountTmpfs(dir, size); err != nil {
			return err
		}
	}
	// Chmod after mounting: the mode must be the tmpfs root's, not the directory's below it.
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	for _, f := range v.Files {
		if err := writeVolumeFile(dir, f); err != nil {
			return err
		}
	}
	return nil
}

// writeVolumeFile writes f under dir with its mode, replacing what was there. Parent
// directories are made as needed; a symlink on the way is refused, never followed.
func writeVolumeFile(dir string, f File) error {
	return writeInRoot(dir, f.Path, f.Data, f.Mode, 0o755)
}

// resolvConfPath is where an instance's own resolv.conf lives on the host.
func resolvConfPath(instanceDir string) string {
	return filepath.Join(instanceDir, "resolv.conf")
}

// writeResolvConf writes an instance's resolv.conf, readable by any user of its
// containers; empty content writes nothing (the containers see the host's).
func writeResolvConf(instanceDir string, content []byte) error {
	if len(content) == 0 {
		return nil
	}
	if err := os.MkdirAll(instanceDir, 0o700); err != nil {
		return err
	}
	return writeVolumeFile(instanceDir, File{Path: "resolv.conf", Mode: 0o644, Data: content})
}

// mountTmpfs mounts a tmpfs of at most size bytes (0: the kernel's default) on dir unless
// one is mounted there already.
func mountTmpfs(dir string, size int64) error {
	mounted, err := mountinfo.Mounted(dir)
	if err != nil || mounted {
		return err
	}
	opts := "mode=0700"
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

// removeInstanceDir unmounts every mount under dir (secret and memory volumes) and removes it.
func removeInstanceDir(dir string) error {
	if err := mounts.UnmountUnder(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// ociMounts binds the volumes a container mounts, from the host directories prepareVolumes
// made. A subPath mount's source is the container's bind target for it, which
// bindSubPaths fills before every task start; binds lists those for the container's spec.
func ociMounts(instanceDir string, s *InstanceSpec, c *ContainerSpec) (out []specs.Mount, binds []subPathBind) {
	out = make([]specs.Mount, 0, len(c.Mounts))
	for i, m := range c.Mounts {
		src := volumeDir(instanceDir, m.Volume)
		if m.SubPath != "" {
			v, _ := s.Volume(m.Volume)
			binds = append(binds, subPathBind{Index: i, Volume: m.Volume, SubPath: m.SubPath,
				Create: v != nil && v.Kind == VolumeEmptyDir})
			src = subPathTarget(instanceDir, c.Name, i)
		}
		opts := []string{"rbind", "nosuid", "nodev", "rw"}
		if m.ReadOnly {
			opts[3] = "ro"
		}
		out = append(out, specs.Mount{Destination: m.Path, Type: "bind", Source: src, Options: opts})
	}
	return out, binds
}
