package network

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
)

// Service virtual IPs. Every node derives every Service's virtual IP from the Services
// of the revision alone, so all nodes agree without asking anyone, and an agent that
// restarts or a node that joins finds the same addresses.

// ErrInvalidServiceRange is returned by AssignVIPs for a service range it cannot use.
var ErrInvalidServiceRange = errors.New("network: invalid service range")

// Bounds on a service range, in prefix length.
const (
	// MinServiceRangeBits is the largest service range, a /12 (about a million
	// addresses), as Kubernetes limits --service-cluster-ip-range for IPv4.
	MinServiceRangeBits = 12
	// MaxServiceRangeBits is the smallest, a /30: one address left once the network,
	// reserved and broadcast addresses are kept back.
	MaxServiceRangeBits = 30
)

// reservedVIP says why no Service gets the address at offset of a range of size
// addresses, as a format for the address and the range; "" when one may.
func reservedVIP(offset, size uint32) string {
	switch offset {
	case 0:
		return "clusterIP %s is reserved: it is the network address of the service range %s"
	case 1:
		return "clusterIP %s is reserved: it is the first address of the service range %s, which Kubernetes gives the API server"
	case size - 1:
		return "clusterIP %s is reserved: it is the broadcast address of the service range %s"
	}
	return ""
}

// VIPRequest is a Service that needs a virtual IP.
type VIPRequest struct {
	// Key names the Service.
	Key ServiceKey
	// Requested is the Service's spec.clusterIP, the zero Addr when it states none.
	Requested netip.Addr
}

// VIPProblem is a Service that did not get the address it asked for, or got none.
type VIPProblem = Problem[ServiceKey, netip.Addr]

// AssignVIPs gives every Service a virtual IP in serviceRange, the same on every node for
// the same Services in any order. Headless Services (clusterIP: None) have no virtual IP
// and are not passed in.
//
// An explicit spec.clusterIP inside the range is honoured; when two Services ask for one
// address, the lower key (namespace, then name) keeps it. Every other Service, in key
// order, takes the address at a hash of its namespace and name, or the next free one after
// it (linear probing, wrapping). Three addresses are never given: the range's network and
// broadcast addresses, and its first address, which Kubernetes reserves for the API
// server's own Service (kubernetes.default); Shoal has no API server but keeps the address
// free, so that manifests that assume it do not collide.
//
// Adding a Service moves no other Service whose address its search does not land on: it
// takes its hash's address, or the next free one, and moves a Service only if that
// address was held by one with a later key, which then searches again (and may move
// another the same way). Removing a Service can move a later-key Service that had probed
// past its address, which is free again. Both need a hash collision, so they are rare in
// a range much larger than the number of Services and common in a crowded one
// (TestVIPStability, 300 random trials each): with 1,000 Services in a /16, adding or
// removing one moved another in 1% of trials or fewer; with 100 Services in a /24, adding
// one moved 0.4 others on average. A rule without state cannot avoid it: when a
// newcomer's hash lands on a held address, the rule cannot tell which of the two came
// first, so sometimes the older one searches on. Explicit addresses never move: a Service
// whose clients must never see its address change states its clusterIP.
//
// Problems, in key order, say what could not be honoured: a requested address outside
// the range or reserved (another is assigned), taken (another is assigned), a key
// requested twice, or a range with no address left (the Service gets none, and is
// missing from the map). The error is for an invalid range only, wrapping
// ErrInvalidServiceRange: IPv4 only, between /12 and /30.
func AssignVIPs(serviceRange netip.Prefix, reqs []VIPRequest) (map[ServiceKey]netip.Addr, []VIPProblem, error) {
	if err := ValidateServiceRange(serviceRange); err != nil {
		return nil, nil, err
	}
	serviceRange = serviceRange.Masked()
	base := ipv4Uint32(serviceRange.Addr())
	size := uint32(1) << (32 - serviceRange.Bits())
	// Slots are the usable addresses: from base+2, after the network and reserved
	// addresses, to the one before broadcast.
	const firstUsable = 2
	usable := int(size) - 3
	out, problems := allocate(reqs, scheme[ServiceKey, netip.Addr, VIPRequest]{
		size: usable,
		order: func(a, b VIPRequest) int {
			return cmp.Or(compareServiceKeys(a.Key, b.Key), a.Requested.Compare(b.Requested))
		},
		compareKeys: compareServiceKeys,
		check: func(r VIPRequest) checked[ServiceKey, netip.Addr] {
			c := checked[ServiceKey, netip.Addr]{key: r.Key, requested: r.Requested,
				slot: slotRequest{want: -1, home: int(stableHash(r.Key.Namespace, r.Key.Name) % uint64(usable))}}
			problem := func(kind ProblemKind, format string, args ...any) *VIPProblem {
				return &VIPProblem{Key: r.Key, Kind: kind, Requested: r.Requested, Message: fmt.Sprintf(format, args...)}
			}
			a := r.Requested.Unmap()
			switch {
			case r.Key.Name == "":
				c.problem, c.drop = problem(ProblemInvalid, "a Service without a name gets no virtual IP"), true
			case !a.IsValid():
			case !a.Is4() || !serviceRange.Contains(a):
				c.problem = problem(ProblemOutsideRange, "clusterIP %s is outside the service range %s", a, serviceRange)
			case reservedVIP(ipv4Uint32(a)-base, size) != "":
				c.problem = problem(ProblemReserved, reservedVIP(ipv4Uint32(a)-base, size), a, serviceRange)
			default:
				c.slot.want = int(ipv4Uint32(a) - base - firstUsable)
			}
			return c
		},
		value:    func(slot int) netip.Addr { return ipv4FromUint32(base + firstUsable + uint32(slot)) },
		describe: func(c checked[ServiceKey, netip.Addr]) string { return "clusterIP " + c.requested.String() },
		keyOrder: "namespace and name",
		full: func(checked[ServiceKey, netip.Addr]) string {
			return fmt.Sprintf("no address left in the service range %s (all %d usable addresses are assigned): the Service has no virtual IP", serviceRange, usable)
		},
	})
	return out, problems, nil
}

// ValidateServiceRange reports whether AssignVIPs can use serviceRange: an IPv4 range
// between /12 and /30. The error wraps ErrInvalidServiceRange.
func ValidateServiceRange(serviceRange netip.Prefix) error {
	switch {
	case !serviceRange.IsValid():
		return fmt.Errorf("%w: no service range", ErrInvalidServiceRange)
	case !serviceRange.Addr().Is4():
		return fmt.Errorf("%w: service range %s is not IPv4: Shoal's Service proxy is IPv4 only", ErrInvalidServiceRange, serviceRange)
	case serviceRange.Bits() < MinServiceRangeBits:
		return fmt.Errorf("%w: service range %s is larger than a /%d, as Kubernetes allows", ErrInvalidServiceRange, serviceRange, MinServiceRangeBits)
	case serviceRange.Bits() > MaxServiceRangeBits:
		return fmt.Errorf("%w: service range %s leaves no address once the network, reserved and broadcast addresses are kept back: at most /%d", ErrInvalidServiceRange, serviceRange, MaxServiceRangeBits)
	}
	return nil
}
