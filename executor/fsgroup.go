package executor

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// applyFSGroup gives the instance's emptyDir and written (configMap, secret, downwardAPI,
// projected) volumes to its fsGroup
// as the kubelet does: group ownership, group read (and write, for an emptyDir), and the
// setgid bit on directories so that what containers create there stays in the group. It
// touches only what Shoal made: an emptyDir's root and the files and directories it wrote
// for a written volume, never what a container put in a volume, and never through a
// symlink.
func applyFSGroup(instanceDir string, s *InstanceSpec) error {
	if s.FSGroup == nil {
		return nil
	}
	gid := int(*s.FSGroup)
	for _, v := range s.Volumes {
		root := volumeDir(instanceDir, v.Name)
		switch v.Kind {
		case VolumeEmptyDir:
			if err := setGroup(root, gid, 0o660); err != nil {
				return err
			}
		case VolumeConfigMap, VolumeSecret, VolumeDownwardAPI, VolumeProjected:
			dirs := map[string]bool{".": true}
			for _, f := range v.Files {
				for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
					dirs[d] = true
				}
				if err := setGroup(filepath.Join(root, filepath.FromSlash(f.Path)), gid, 0o440); err != nil {
					return err
				}
			}
			for d := range dirs {
				if err := setGroup(filepath.Join(root, filepath.FromSlash(d)), gid, 0o440); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// setGroup makes p belong to gid with the mode bits of mask added (and, for a directory,
// search and setgid too). p is a path no container can write (a volume's root, or a file
// of a volume containers mount read-only), so checking it is no symlink once is enough.
func setGroup(p string, gid int, mask fs.FileMode) error {
	if err := os.Lchown(p, -1, gid); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
		return err
	}
	mode := fi.Mode().Perm() | mask
	if fi.IsDir() {
		mode |= fs.ModeSetgid | 0o110
	}
	return os.Chmod(p, mode)
}
