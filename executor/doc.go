// Package executor owns what runs on this node: it makes containerd match the share of the
// placement the agent hands it. It resolves a Deployment's pod template into a fully
// specified InstanceSpec (Resolve), pulls images, creates, starts, stops, restarts and
// deletes the containers of an instance, adopts the ones a previous agent left running,
// reports task exits and OOM kills as Events, keeps per-instance log files with a size
// cap, and computes the CrashLoopBackOff schedule (Backoff).
//
// The executor never decides placement, never decides when to restart (the agent does,
// using Backoff), and never touches a container that does not carry Shoal's labels.
// It keeps no state of its own that containerd's labels, the state directory and the
// manifests cannot rebuild: a new Runtime on the same containerd sees what the old one
// started.
//
// Runtime is the interface the agent uses. Containerd implements it on a real containerd;
// executortest.Fake implements it in memory, and executortest.RunConformance holds both to
// the same contract.
package executor
