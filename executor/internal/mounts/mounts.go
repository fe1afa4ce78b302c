// Package mounts unmounts what is mounted below a directory before it is removed. It is
// shared by the executor (instance volumes) and containerdtest (a test daemon's
// directories); it never mounts anything and never touches a path outside the one given.
package mounts

import (
	"errors"
	"fmt"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// UnmountUnder detaches every mount at or below dir, deepest first, so that dir can be
// removed. Mounts that vanished meanwhile are not errors.
func UnmountUnder(dir string) error {
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mounts under %s: %w", dir, err)
	}
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Mountpoint) > len(ms[j].Mountpoint) })
	var errs []error
	for _, m := range ms {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}
