package main

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// listen is a listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startForward relays a new loopback port to `to` until the test ends, and returns the port.
func startForward(t *testing.T, to string) string {
	t.Helper()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, to) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestRelaysBothWaysWithHalfClose: the upstream reads the request to its end (the
// client's half-close passes through), answers, and the client reads the answer to its end.
func TestRelaysBothWaysWithHalfClose(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last, after the other cleanups
	upstream := listen(t)
	defer upstream.Close()
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			req, _ := io.ReadAll(c)
			c.Write(append([]byte("got "), req...))
			c.Close()
		}
	}()
	addr := startForward(t, upstream.Addr().String())
	for _, msg := range []string{"one", "two"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(msg))
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "got "+msg {
			t.Errorf("answer %q, %v; want %q", got, err, "got "+msg)
		}
	}
}

// TestUnreachableUpstreamClosesClient: with nothing listening upstream, the client's
// connection is closed (the client sees EOF or a reset, not a hang).
func TestUnreachableUpstreamClosesClient(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last, after the other cleanups
	dead := listen(t)
	to := dead.Addr().String()
	dead.Close()
	c, err := net.Dial("tcp", startForward(t, to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || isTimeout(err) {
		t.Errorf("read %d bytes, %v; want the connection closed", n, err)
	}
}

// TestStopClosesRelays: stopping serve ends a relay in flight, whose peers never close.
func TestStopClosesRelays(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // last, after the other cleanups
	upstream := listen(t)
	defer upstream.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := upstream.Accept(); err == nil {
			accepted <- c
		}
	}()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, upstream.Addr().String()) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up := <-accepted
	defer up.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || isTimeout(err) {
		t.Errorf("read %d bytes, %v; want the connection closed", n, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
