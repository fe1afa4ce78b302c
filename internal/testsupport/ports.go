package testsupport

import (
	"net"
	"strconv"
	"testing"
)

// FreePort returns a port of 127.0.0.1 that is free for both TCP and UDP right now, for
// tests that must know addresses before their servers start (gossip listens on both). Another
// process may take it before the test does; the window is short enough for tests.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		tcp.Close()
		if err == nil {
			udp.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// FreeAddr is FreePort as a "127.0.0.1:port" address: one to listen on, or one where
// nothing answers.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
