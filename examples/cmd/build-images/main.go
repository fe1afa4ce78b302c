// Command build-images compiles the hello app and pushes its images (hello:v1 and
// hello:v2, differing by their baked-in VERSION) to a registry, for the demo:
//
//	go run ./examples/cmd/build-images --registry 127.0.0.1:5000
//
// With --serve it first starts an in-process registry on that address and keeps serving
// it until interrupted, so no registry needs to be installed; --also-listen serves the
// same registry on a second address (the demo's nodes reach it there).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoalhq/shoal/examples/imagebuild"
)

func main() {
	registry := flag.String("registry", "127.0.0.1:5000", "registry to push to, host:port")
	serve := flag.Bool("serve", false, "serve an in-process registry on --registry and keep running")
	also := flag.String("also-listen", "", "with --serve, serve the registry on this host:port too")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *registry, *serve, *also); err != nil {
		log.Fatalf("build-images: %v", err)
	}
}

func run(ctx context.Context, registry string, serve bool, also string) error {
	var served []string // the addresses the in-process registry answers on
	if serve {
		r, err := imagebuild.StartRegistry(registry)
		if err != nil {
			return err
		}
		defer r.Close()
		registry = r.Addr
		served = append(served, r.Addr)
		if also != "" {
			addr, err := r.ListenAlso(also)
			if err != nil {
				return err
			}
			served = append(served, addr)
		}
	}
	dir, err := os.MkdirTemp("", "build-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	refs, err := imagebuild.BuildHello(ctx, dir, registry)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		fmt.Println(ref)
	}
	if serve {
		log.Printf("serving registry on %s; interrupt to stop", strings.Join(served, " and "))
		<-ctx.Done()
	}
	return nil
}
