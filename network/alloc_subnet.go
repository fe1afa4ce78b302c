package network

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"net/netip"
)

// Pod subnets. Every node claims one subnet of the cluster's pod range for its
// instances and publishes the claim in its own signed gossip metadata. There is no
// leader and no store: every node settles conflicting claims with the same rule from the
// claims it sees, so two nodes that see the same claims reach the same verdict.
//
// The rule: of two claims of one subnet, the earlier Since keeps it, and on equal Since
// the lower node name. A node whose claim loses chooses again, among the subnets no
// claim holds, with a new Since. Claims that are not a claimable subnet of the range
// (another size, outside the range, not aligned, IPv6) are ignored, so a claim of a
// bigger prefix takes nothing from anyone: with one size for all, two valid claims
// overlap only when they are equal.
//
// A node keeps its subnet across agent restarts, when its instances keep running with
// their addresses: it publishes its persisted claim again, Since unchanged. If another
// node took the subnet while the claim was out of gossip, the earlier Since wins, and the
// newcomer chooses again.
//
// The rule trusts each member's Since, as it trusts its labels: a member that backdates
// its claim takes the subnet from the node that held it. Members are authenticated, so
// this is a member's misbehaviour, not an outsider's.

// SubnetClaim is one node's claim of a pod subnet.
type SubnetClaim struct {
	// Node is the name of the node making the claim.
	Node string
	// Subnet is the subnet claimed; the zero Prefix when the node holds none yet.
	Subnet netip.Prefix
	// Since is when the node first made this claim, in unix milliseconds by its own
	// clock. The node persists it with the subnet and publishes it unchanged after a
	// restart, so that it keeps its subnet for its life.
	Since int64
}

// ErrInvalidPodRange is returned by NewPodRange for a range or node prefix length Shoal
// cannot carve.
var ErrInvalidPodRange = errors.New("network: invalid pod range")

// ErrPodRangeFull is returned by ChooseSubnet when other nodes claim every subnet.
var ErrPodRangeFull = errors.New("network: pod range full")

// Bounds on a pod range.
const (
	// MaxPodSubnets is the most subnets a pod range may be carved into: it bounds what a
	// node's choice and the verdicts on claims cost.
	MaxPodSubnets = 1 << 16
	// MaxNodeSubnetBits is the longest node prefix: a node's subnet needs a network
	// address, a gateway (its bridge), an instance and a broadcast address.
	MaxNodeSubnetBits = 30
)

// PodRange is the cluster's pod range carved into one subnet per node. Build it with
// NewPodRange; its methods are pure and the same on every node.
//
// The first subnet of the range is never handed out, as flannel's default SubnetMin
// skips it: its network address is also the whole range's, so a backend that names a
// node by its subnet's network address (flannel's VXLAN gives each node's device the
// first address of its subnet) would use the range's own. It costs one subnet of the range.
//
// IPv4 only: the bridge, routes and nftables rules Shoal programs are IPv4.
type PodRange struct {
	cluster netip.Prefix
	bits    int
	// subnets counts the subnets of the range, including the first, which is not claimable.
	subnets int
}

// NewPodRange checks a cluster range (such as 10.244.0.0/16) and the prefix length of a
// node's subnet (such as 24). The range is taken as its network (10.244.1.0/16 is
// 10.244.0.0/16), as net.ParseCIDR reads it. It is an error, wrapping ErrInvalidPodRange,
// when the range is not IPv4, when bits is not longer than the range's or longer than
// MaxNodeSubnetBits, or when that carves more than MaxPodSubnets subnets.
func NewPodRange(cluster netip.Prefix, bits int) (PodRange, error) {
	invalid := func(format string, args ...any) (PodRange, error) {
		return PodRange{}, fmt.Errorf("%w: %s", ErrInvalidPodRange, fmt.Sprintf(format, args...))
	}
	switch {
	case !cluster.IsValid():
		return invalid("no cluster range")
	case !cluster.Addr().Is4():
		return invalid("cluster range %s is not IPv4: Shoal's pod network is IPv4 only", cluster)
	case bits <= cluster.Bits():
		return invalid("node subnet /%d is not smaller than the cluster range %s", bits, cluster)
	case bits > MaxNodeSubnetBits:
		return invalid("node subnet /%d leaves no room for instances: at most /%d", bits, MaxNodeSubnetBits)
	case bits-cluster.Bits() > 16:
		return invalid("cluster range %s in /%d subnets makes %d subnets, more than %d", cluster, bits, uint64(1)<<(bits-cluster.Bits()), MaxPodSubnets)
	}
	return PodRange{cluster: cluster.Masked(), bits: bits, subnets: 1 << (bits - cluster.Bits())}, nil
}

// Cluster returns the cluster's pod range.
func (r PodRange) Cluster() netip.Prefix { return r.cluster }

// NodeBits returns the prefix length of a node's subnet.
func (r PodRange) NodeBits() int { return r.bits }

// Claimable returns how many subnets nodes may claim: all but the first.
func (r PodRange) Claimable() int { return r.subnets - 1 }

// String renders the range as "10.244.0.0/16 in /24 subnets".
func (r PodRange) String() string { return fmt.Sprintf("%s in /%d subnets", r.cluster, r.bits) }

// IsClaimable reports whether a node may claim subnet: an IPv4 network of the node size
// inside the range, and not its first subnet.
func (r PodRange) IsClaimable(subnet netip.Prefix) bool {
	_, ok := r.index(subnet)
	return ok
}

// index returns the position of a claimable subnet in the range (1 to subnets-1).
func (r PodRange) index(subnet netip.Prefix) (int, bool) {
	if r.subnets == 0 || !subnet.IsValid() || !subnet.Addr().Is4() || subnet.Bits() != r.bits ||
		subnet.Masked() != subnet || !r.cluster.Contains(subnet.Addr()) {
		return 0, false
	}
	i := int((ipv4Uint32(subnet.Addr()) - ipv4Uint32(r.cluster.Addr())) >> (32 - r.bits))
	return i, i > 0
}

// subnet returns the subnet at position i.
func (r PodRange) subnet(i int) netip.Prefix {
	a := ipv4Uint32(r.cluster.Addr()) + uint32(i)<<(32-r.bits)
	return netip.PrefixFrom(ipv4FromUint32(a), r.bits)
}

// preferred yields the positions node tries, in order: every claimable subnet once,
// from one picked by a hash of its name, walking up and wrapping past the last to the
// first claimable.
func (r PodRange) preferred(node string) iter.Seq[int] {
	return func(yield func(int) bool) {
		if r.subnets == 0 {
			return
		}
		claimable := r.Claimable()
		start := int(stableHash(node) % uint64(claimable))
		for n := range claimable {
			if !yield(1 + (start+n)%claimable) {
				return
			}
		}
	}
}

// PreferredSubnets returns the order in which node tries subnets: every claimable subnet
// once, from one picked by a hash of its name, walking up and wrapping. Nodes start at
// different places, so nodes that join at once rarely want the same subnet.
func (r PodRange) PreferredSubnets(node string) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		for i := range r.preferred(node) {
			if !yield(r.subnet(i)) {
				return
			}
		}
	}
}

// claimBefore is the order that settles claims: the earlier Since, then the lower node
// name, then the lower subnet (for one node's several claims).
func claimBefore(a, b SubnetClaim) bool {
	return cmp.Or(cmp.Compare(a.Since, b.Since), cmp.Compare(a.Node, b.Node), a.Subnet.Addr().Compare(b.Subnet.Addr())) < 0
}

// owners settles claims: for each position of the range, the index in claims of the
// claim that keeps it, or -1. Invalid claims and claims without a node name are ignored,
// and a node counts with one claim only, its first by claimBefore: one node cannot hold
// two subnets. Every step takes a minimum under a total order, so the input's order does
// not matter.
func (r PodRange) owners(claims []SubnetClaim) []int32 {
	position := make([]int32, len(claims))
	first := make(map[string]int32, len(claims)) // each node's first valid claim
	for i, c := range claims {
		pos, ok := r.index(c.Subnet)
		if !ok || c.Node == "" {
			position[i] = -1
			continue
		}
		position[i] = int32(pos)
		if held, seen := first[c.Node]; !seen || claimBefore(c, claims[held]) {
			first[c.Node] = int32(i)
		}
	}
	owners := make([]int32, r.subnets)
	for i := range owners {
		owners[i] = -1
	}
	for _, i := range first {
		pos := position[i]
		if held := owners[pos]; held < 0 || claimBefore(claims[i], claims[held]) {
			owners[pos] = i
		}
	}
	return owners
}

// SubnetOwners settles a set of claims (as gossip shows them, one per node): it maps each
// claimed subnet to the node that keeps it. Claims that are not claimable subnets are
// ignored. Every node that sees the same claims, in any order, gets the same map.
func (r PodRange) SubnetOwners(claims []SubnetClaim) map[netip.Prefix]string {
	out := map[netip.Prefix]string{}
	for pos, held := range r.owners(claims) {
		if held >= 0 {
			out[r.subnet(pos)] = claims[held].Node
		}
	}
	return out
}

// LostClaim reports whether self's claim loses its subnet to one of claims, and to
// which node. Claims by self.Node are ignored: self is that node's claim. A claim of a
// subnet that is not claimable, or without a node name, has lost, to nobody (winner "").
func (r PodRange) LostClaim(self SubnetClaim, claims []SubnetClaim) (winner string, lost bool) {
	i, ok := r.index(self.Subnet)
	if !ok || self.Node == "" {
		return "", true
	}
	others := othersOf(self.Node, claims)
	held := r.owners(others)[i]
	if held < 0 || claimBefore(self, others[held]) {
		return self.Node, false
	}
	return others[held].Node, true
}

// ChooseSubnet returns the subnet the node of previous should hold, given every other
// live node's claim (from gossip; claims by previous.Node itself are ignored). previous
// is the node's own claim: previous.Subnet is the subnet it held, the zero Prefix when
// none, and previous.Since when it claimed it.
//
// The node keeps previous.Subnet while it is claimable and no other claim wins it
// (LostClaim); otherwise it takes the first subnet in its PreferredSubnets order that no
// other claim holds. When the result differs from previous.Subnet, the node makes a new
// claim: it publishes the result with Since set to its clock's now, and persists both.
// It returns an error wrapping ErrPodRangeFull when other claims hold every subnet, and
// an error when previous.Node is empty.
//
// It costs O(len(others)) and at most one step per subnet of the range: 5,000 claims in
// a range of 65,536 subnets take 1 to 2.5 ms (BenchmarkChooseSubnet, 2 shared cores).
func (r PodRange) ChooseSubnet(previous SubnetClaim, others []SubnetClaim) (netip.Prefix, error) {
	if previous.Node == "" {
		return netip.Prefix{}, errors.New("network: choose subnet: no node name")
	}
	if r.subnets == 0 {
		return netip.Prefix{}, fmt.Errorf("%w: the zero PodRange: build one with NewPodRange", ErrInvalidPodRange)
	}
	others = othersOf(previous.Node, others)
	owners := r.owners(others)
	if i, ok := r.index(previous.Subnet); ok {
		if held := owners[i]; held < 0 || claimBefore(previous, others[held]) {
			return previous.Subnet, nil
		}
	}
	for i := range r.preferred(previous.Node) {
		if owners[i] < 0 {
			return r.subnet(i), nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w: other nodes claim all %d subnets of %s", ErrPodRangeFull, r.Claimable(), r)
}

// othersOf returns claims without those made by node.
func othersOf(node string, claims []SubnetClaim) []SubnetClaim {
	out := make([]SubnetClaim, 0, len(claims))
	for _, c := range claims {
		if c.Node != node {
			out = append(out, c)
		}
	}
	return out
}

func ipv4Uint32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func ipv4FromUint32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
