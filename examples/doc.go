// Package examples holds what the demo and the end-to-end tests deploy: the hello app
// (examples/hello), a gRPC health server for gRPC probes (examples/grpchealth), the in-process image tooling that packages it (examples/imagebuild,
// examples/cmd/build-images), Kubernetes-shaped manifests for it (examples/manifests), and
// the demo (examples/demo) with the forwarder that lets its nodes reach its registry
// (examples/cmd/forward).
// Nothing in Shoal itself imports these packages; only tests do.
package examples
