package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is go-containerregistry's in-memory OCI registry served over plain HTTP on a
// loopback address, for tests and the demo. Close stops it; its images go with it.
type Registry struct {
	// Addr is "127.0.0.1:port", the host part of image references.
	Addr string
	srv  *http.Server
	// serving counts the listeners' Serve goroutines; serveErrs is how they ended other
	// than by Close.
	serving   sync.WaitGroup
	mu        sync.Mutex
	serveErrs []error
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
	}
	r.serve(ln)
	return r, nil
}

// ListenAlso serves the same registry (the same images) on a second address, such as one
// that other network namespaces reach, while Addr stays the host in image references. It
// returns the address it listens on.
func (r *Registry) ListenAlso(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("imagebuild: registry: %w", err)
	}
	r.serve(ln)
	return ln.Addr().String(), nil
}

// serve answers on ln until Close shuts the server down.
func (r *Registry) serve(ln net.Listener) {
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		if err := r.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			r.mu.Lock()
			r.serveErrs = append(r.serveErrs, err)
			r.mu.Unlock()
		}
	}()
}

// Close stops the registry: it lets requests in flight finish for a moment, then closes
// every connection, including idle keep-alive ones a client (a containerd) still holds.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.srv.Shutdown(ctx) // a timeout here only means Close below is less polite
	err := r.srv.Close()
	r.serving.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(append([]error{err}, r.serveErrs...)...)
}
