// Package network gives Shoal the Kubernetes network model: every instance has its own
// address, instances reach each other across nodes without NAT, and a Service is a virtual
// IP that the kernel spreads over its ready instances.
//
// It owns:
//   - pod subnets per node: each node claims one subnet of the cluster's pod range and
//     publishes the claim in its own signed gossip metadata; a deterministic rule settles
//     conflicting claims, with no leader and no store (ChooseSubnet, SubnetOwners, LostClaim);
//   - CNI attach and detach: an instance's network namespace and address on its node's
//     bridge, through the reference plugins (bridge, host-local, loopback, portmap);
//   - cross-node reachability: routes to each peer's pod subnet via the peer's address on
//     one L2 segment, a VXLAN overlay otherwise, kept in step with membership;
//   - Service virtual IPs and NodePorts, assigned deterministically from their ranges
//     (AssignVIPs, AssignNodePorts) and programmed in nftables, in the style of
//     kube-proxy's nftables mode.
//
// The allocation functions (alloc*.go) are pure, like the planner: inputs in, a value out,
// the same on every node for the same inputs in any order. They do no I/O, read no clock
// and use no randomness; they import only the standard library. Everything else in the
// package acts on one node's kernel and must never decide what another node does.
package network
