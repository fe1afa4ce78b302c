package network

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests of this package never change the network of the namespace they run in: every
// interface, address, route and rule they make is in a namespace they create with
// CreateNetNS (under t.TempDir(), not /var/run/netns), and the CNI plugins run inside the
// test's node namespace through PodNetworkConfig.NodeNetNS. The test process itself stays
// in its own namespace; it opens sockets in the others with InNetNS.

// skipUnlessRoot skips tests that create namespaces and run the CNI plugins.
func skipUnlessRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root, network namespaces and the CNI plugins (skipped with -short)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root to create network namespaces; run as root, or with -short")
	}
}

// testName is a unique name with this package's prefix, short enough for an interface.
func testName(t testing.TB) string { return "stcni" + randomHex(t, 4) }

// randomHex is n random bytes in hex, for names no other test run uses.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newNodeNS creates a network namespace for a test node with its loopback up, and removes
// it (and everything in it) when the test ends.
func newNodeNS(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), testName(t))
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Error(err)
		}
	})
	runIn(t, path, "ip", "link", "set", "lo", "up")
	return path
}

// runIn runs a command inside the namespace at ns and returns its output.
func runIn(t testing.TB, ns string, argv ...string) string {
	t.Helper()
	var out []byte
	err := InNetNS(ns, func() error {
		var err error
		out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(argv, " "), ns, err, out)
	}
	return string(out)
}

// listenIn opens a TCP listener in the namespace at ns that answers every connection with
// reply, until the test ends.
func listenIn(t testing.TB, ns, addr, reply string) net.Addr {
	t.Helper()
	var ln net.Listener
	if err := InNetNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr()
}

// dialFrom connects from the namespace at ns to addr and returns what the server says.
func dialFrom(ns, addr string) (string, error) {
	var conn net.Conn
	if err := InNetNS(ns, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 64)
	n, err := conn.Read(b)
	return string(b[:n]), err
}

// The namespace helpers: a new namespace has only a loopback device, InNetNS runs code in
// it and not in the caller's, and RemoveNetNS leaves nothing.
func TestNetNSCreateEnterRemove(t *testing.T) {
	skipUnlessRoot(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	if !IsNetNS(path) {
		t.Fatal("IsNetNS is false for a namespace just created")
	}
	if err := CreateNetNS(path); err == nil {
		t.Error("creating a namespace on an existing path succeeded")
	}
	var inside []net.Interface
	if err := InNetNS(path, func() (err error) { inside, err = net.Interfaces(); return err }); err != nil {
		t.Fatal(err)
	}
	if len(inside) != 1 || inside[0].Name != "lo" {
		t.Errorf("a new namespace has interfaces %v, want only lo", inside)
	}
	own, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(own) == 1 && own[0].Name == "lo" {
		t.Log("the test's own namespace has only lo too: the check above proves less here")
	}
	if err := RemoveNetNS(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after RemoveNetNS, stat = %v, want not exist", err)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Errorf("RemoveNetNS of a removed namespace: %v", err)
	}
	plain := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(plain, nil, 0o600)
	if IsNetNS(plain) {
		t.Error("IsNetNS is true for a plain file")
	}
	if err := RemoveNetNS(plain); err != nil {
		t.Errorf("RemoveNetNS of a plain file (a crash before the mount): %v", err)
	}
}
