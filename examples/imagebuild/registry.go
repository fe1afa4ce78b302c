package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is go-containerregistry's in-memory OCI registry served over plain HTTP on a
// loopback address, for tests and the demo. Close stops it; its images go with it.
type Registry struct {
	// Addr is "127.0.0.1:port", the host part of image references.
	Addr string
	srv  *http.Server
	done chan error
}

// StartRegistry serves a registry on addr ("127.0.0.1:0" picks a free port).
func StartRegistry(addr string) (*Registry, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: registry: %w", err)
	}
	r := &Registry{
		Addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(ln) }() // ends when Close shuts the server down
	return r, nil
}

// Close stops the registry: it lets requests in flight finish for a moment, then closes
// every connection, including idle keep-alive ones a client (a containerd) still holds.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx) // a timeout here only means Close below is less polite
	err := r.srv.Close()
	if serveErr := <-r.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
