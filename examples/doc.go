// Package examples holds what the demo and the end-to-end tests deploy: the hello app
// (examples/hello), the in-process image tooling that packages it (examples/imagebuild,
// examples/cmd/build-images), and Kubernetes-shaped manifests for it (examples/manifests).
// Nothing in Shoal itself imports these packages; only tests do.
package examples
