// Command secprobe is the test image of the executor's sandbox tests: it reports, one
// "name=value" line per check, who it runs as and what the kernel lets it do, then exits 0.
// A check that fails prints the errno's name (EPERM), so that tests can tell a refusal
// from a success.
//
//	uid, gid, groups          its credentials
//	CapEff, NoNewPrivs, Seccomp   as /proc/self/status shows them
//	pidns                     its PID namespace (/proc/self/ns/pid)
//	packet                    socket(AF_PACKET, SOCK_RAW): what sniffing the node takes
//	keyctl                    keyctl(GET_KEYRING_ID), which the default seccomp profile refuses
//	rootfs                    creating a file in /
//	read                      reading the file named by $PROBE_READ (its content on success)
//	write                     creating a file in the directory named by $PROBE_WRITE
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Printf("uid=%d\ngid=%d\n", os.Getuid(), os.Getgid())
	groups, _ := os.Getgroups()
	fmt.Printf("groups=%v\n", groups)
	if f, err := os.Open("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			if k == "CapEff" || k == "NoNewPrivs" || k == "Seccomp" {
				fmt.Printf("%s=%s\n", k, strings.TrimSpace(v))
			}
		}
		f.Close()
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	report("pidns", ns, err)
	report("packet", "ok", closeFD(unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))))
	_, err = unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 1, 0, 0)
	report("keyctl", "ok", err)
	report("rootfs", "ok", os.WriteFile("/secprobe-was-here", nil, 0o644))
	if p := os.Getenv("PROBE_READ"); p != "" {
		b, err := os.ReadFile(p)
		report("read", strings.TrimSpace(string(b)), err)
	}
	if d := os.Getenv("PROBE_WRITE"); d != "" {
		report("write", "ok", os.WriteFile(filepath.Join(d, "secprobe"), []byte("x"), 0o644))
	}
}

// report prints name=value, or name=ERRNO when err is not nil.
func report(name, value string, err error) {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		value = unix.ErrnoName(errno)
	case err != nil:
		value = "error: " + err.Error()
	}
	fmt.Printf("%s=%s\n", name, value)
}

func closeFD(fd int, err error) error {
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
