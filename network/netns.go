package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Network namespaces are made the way `ip netns add` makes them, without its fixed
// directory: a thread unshares a fresh namespace and bind-mounts its /proc entry on a
// file, which keeps the namespace alive with no process in it until the file is
// unmounted. The thread then goes back to its own namespace; a thread that cannot is
// never reused (it stays locked and ends with its goroutine), so no other goroutine ever
// runs in a namespace it did not ask for.

// threadNetNS is the calling thread's own network namespace (not the process's: setns and
// unshare act on one thread).
const threadNetNS = "/proc/thread-self/ns/net"

// CreateNetNS creates a new, empty network namespace (only a loopback device, down) and
// bind-mounts it at path, which must not exist. RemoveNetNS undoes it.
func CreateNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("network: create netns mount point: %w", err)
	}
	f.Close()
	if err := onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		if err := unix.Mount(threadNetNS, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		return nil
	}); err != nil {
		os.Remove(path)
		return fmt.Errorf("network: create netns %s: %w", path, err)
	}
	return nil
}

// RemoveNetNS unmounts and removes a namespace made by CreateNetNS. The namespace itself
// ends when nothing else holds it (no process in it, no other mount of it): its devices
// go with it, the host end of a veth pair included. A path that is missing, or is a plain
// file left by a crash before the mount, is not an error.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network: unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network: remove netns %s: %w", path, err)
	}
	return nil
}

// IsNetNS reports whether path is a mounted network namespace (a file on nsfs).
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// InNetNS runs fn on a thread of its own that has entered the network namespace at path,
// then puts the thread back in the namespace it came from. Sockets fn opens belong to that
// namespace for their whole life, whichever thread uses them later; processes fn starts
// (os/exec) start in it. Goroutines fn starts do not run in it.
func InNetNS(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("network: open netns %s: %w", path, err)
	}
	defer unix.Close(target)
	return onFreshThread(func() error {
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("network: enter netns %s: %w", path, err)
		}
		return fn()
	})
}

// onFreshThread runs fn on a goroutine locked to its thread and restores the thread's
// network namespace afterwards. If it cannot, the thread is thrown away: the goroutine
// ends still locked, and the Go runtime then ends the thread instead of reusing it.
func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(threadNetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to own netns: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
