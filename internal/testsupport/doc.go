// Package testsupport holds what the tests of several packages build the same way: real
// Git repositories made with the git CLI, minimal Deployment manifests, and free loopback
// ports. It only builds inputs; it asserts nothing about Shoal. Never use it outside tests.
package testsupport
