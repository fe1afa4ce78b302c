// Package planner owns placement: Plan turns the desired state of one revision and the
// cluster as gossip reports it (a View) into a Placement — which node runs which replica,
// which replicas cannot run and why, and which running instances must stop. It also owns
// Explain (why a replica is where it is), and Diff and LostPlacements (what a new revision
// changes, and which workloads it would leave without the place they had, for `shoal plan`).
//
// The planner is pure, as raft's core is: inputs in, a value out. It does no I/O, reads no
// clock and uses no global randomness; it imports only the standard library and spec.
// Every daemon runs Plan on the same inputs and must get a byte-identical Placement, so
// every input is sorted before use and no map order, time or process state leaks into the
// result. It never talks to containerd, gossip or Git: the agent hands it values and acts
// on the value it returns.
//
// Placement follows Nomad's scheduler: for each replica a chain of feasibility filters, each
// recording why it rejects a node (filter.go), then rankers that score the few feasible
// nodes sampled, the best score winning (rank.go). Candidates are visited in consistent-hash
// order — a ring of virtual nodes, walked from a position derived from the replica slot's
// identity (hash.go) — which makes placements stable: a node joining takes over about 1/N of
// fresh placements, a node leaving moves only its own, and a running instance stays where
// it is while its node still satisfies every hard constraint (divergence.go).
//
// A node takes at most its MaxInstances (the kubelet's maxPods, 110 by default), so a plan
// holds at most that many placements per node; a Deployment's replicas beyond what every
// alive node together can run get no slot of their own but one Unplaced run, so that the
// memory of a plan grows with what can be placed, never with spec.replicas.
//
// There is no randomness to seed: ties break by ring position, the ring by node name
// hashes. All arithmetic is integer, so daemons on different CPU architectures agree.
package planner
