// Package agent runs one node. It is a pure core and a thin shell, in the shape of
// etcd-io/raft's RawNode.
//
// The core (core.go) holds the node's instance records and every decision about them. It
// has no goroutine, does no I/O and reads no clock: the shell steps it with events — a
// revision from sync, a runtime listing, an action's result, a probe verdict, a gossip
// view, a tick — each with the time it happened (Step). Ready then brings the decisions up
// to date, planning at most once however many events came (reconcile.go), and returns
// what to do as plain data: starts, stops and restarts, probers to run, the status
// snapshot, what to gossip, the DNS records, the revision to record. Advance acknowledges
// it. Each revision is compiled once (workload.go) into what the planner, the executor,
// probes, gossip and DNS all use; nothing downstream reads the manifests again.
//
// The shell (agent.go, Agent.Run) selects over the sources, steps the core, carries out
// Ready with workers, probers and the collaborators (cluster, DNS server, revision
// marker), and calls Advance. It is the one place that reads the clock.
//
// The agent decides when (rollout pacing, crash backoff); the planner decides where; the
// executor does the containerd work. Status readers get immutable snapshots.
package agent
