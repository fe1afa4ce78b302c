// Package executortest holds what tests of and against the executor share: Fake, an
// in-memory executor.Runtime whose images are Go functions (Programs), and RunConformance,
// the one suite that both Fake and executor.Containerd must pass, so that tests of the
// agent against Fake mean something on a real node.
//
// It is for tests only; nothing in Shoal's daemon imports it.
package executortest
