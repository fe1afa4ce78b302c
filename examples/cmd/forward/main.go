// Command forward relays TCP connections from one address to another, for the demo: run
// in a node's network namespace on 127.0.0.1:5000, it lets the node pull images named
// 127.0.0.1:5000/... from the registry that the machine serves on the demo bridge.
//
//	nsenter --net=/var/run/netns/shoal-demo-node1 forward --listen 127.0.0.1:5000 --to 10.210.0.254:5000
//
// It runs until interrupted (SIGINT or SIGTERM), then closes the connections it relays.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// dialTimeout bounds a connection to --to; a client sees its connection closed after it.
const dialTimeout = 5 * time.Second

func main() {
	listen := flag.String("listen", "127.0.0.1:5000", "host:port to accept connections on")
	to := flag.String("to", "", "host:port to relay each connection to")
	flag.Parse()
	if *to == "" {
		log.Fatal("forward: --to is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("forward: %v", err)
	}
	log.Printf("forward: relaying %s to %s", ln.Addr(), *to)
	if err := serve(ctx, ln, *to); err != nil {
		log.Fatalf("forward: %v", err)
	}
}

// serve relays every connection accepted on ln to the address to, until ctx ends; then it
// closes ln and the connections in flight and returns once their goroutines have ended.
func serve(ctx context.Context, ln net.Listener, to string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var relays sync.WaitGroup
	defer relays.Wait()
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		relays.Add(1)
		go func() {
			defer relays.Done()
			relay(ctx, conn.(*net.TCPConn), to)
		}()
	}
}

// relay copies bytes both ways between client and a new connection to the address to,
// passing on each side's half-close, until both directions end or ctx does.
func relay(ctx context.Context, client *net.TCPConn, to string) {
	defer client.Close()
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", to)
	if err != nil {
		log.Printf("forward: %s: %v", client.RemoteAddr(), err)
		return
	}
	upstream := c.(*net.TCPConn)
	defer upstream.Close()
	stop := context.AfterFunc(ctx, func() { client.Close(); upstream.Close() })
	defer stop()
	var both sync.WaitGroup
	both.Add(2)
	go func() { defer both.Done(); pipe(upstream, client) }()
	go func() { defer both.Done(); pipe(client, upstream) }()
	both.Wait()
}

// pipe copies from src to dst until src ends, then half-closes dst so its reader sees the
// end too. A failure on either side closes both, which ends the other direction as well.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		if !errors.Is(err, net.ErrClosed) {
			log.Printf("forward: %s: %v", src.RemoteAddr(), err)
		}
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
