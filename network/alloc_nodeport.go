package network

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// NodePorts: the port on every node's address at which a Service of type NodePort (or
// LoadBalancer, served as NodePort) is reached from outside the cluster. They are derived
// as virtual IPs are (AssignVIPs), from the Services of the revision alone.

// The NodePort range Kubernetes uses by default (--service-node-port-range).
const (
	DefaultNodePortMin uint16 = 30000
	DefaultNodePortMax uint16 = 32767
)

// ErrInvalidNodePortRange is returned by AssignNodePorts for a range it cannot use.
var ErrInvalidNodePortRange = errors.New("network: invalid NodePort range")

// Protocols a NodePort may carry; a port number is taken per protocol, so TCP 30080 and
// UDP 30080 may belong to different Services, as in Kubernetes.
var nodePortProtocols = []string{"TCP", "UDP", "SCTP"}

// NodePortKey names one port of a Service.
type NodePortKey struct {
	// Service names the Service.
	Service ServiceKey
	// Port is the Service port's name, or its number as text when it has no name
	// (only a Service with a single port may leave it unnamed).
	Port string
}

// String renders the key as namespace/name:port.
func (k NodePortKey) String() string { return k.Service.String() + ":" + k.Port }

func compareNodePortKeys(a, b NodePortKey) int {
	return cmp.Or(compareServiceKeys(a.Service, b.Service), cmp.Compare(a.Port, b.Port))
}

// NodePortRequest is one port of a Service that needs a NodePort.
type NodePortRequest struct {
	// Key names the Service.
	Key ServiceKey
	// Port is the Service port's name, or its number as text when it has none; unique in
	// the Service.
	Port string
	// Protocol is TCP, UDP or SCTP; empty means TCP, as Kubernetes defaults it.
	Protocol string
	// Requested is the port's spec.ports[].nodePort, 0 when it states none.
	Requested uint16
}

func (r NodePortRequest) key() NodePortKey { return NodePortKey{Service: r.Key, Port: r.Port} }

func (r NodePortRequest) protocol() string { return cmp.Or(r.Protocol, "TCP") }

// NodePortProblem is a Service port that did not get the NodePort it asked for, or got none.
type NodePortProblem = Problem[NodePortKey, uint16]

// AssignNodePorts gives every Service port in reqs a NodePort in [lo, hi], the same on
// every node for the same requests in any order, by the scheme of AssignVIPs: explicit
// nodePorts in the range first (the lower key, by namespace, name and port, keeping one
// two ask for), then every other port, in key order, at a hash of its namespace, name and
// port or the next free port after it. A port number is taken per protocol. What moves
// when a Service is added or removed is what moves for virtual IPs (see AssignVIPs).
//
// Problems, in key order, say what could not be honoured: a requested port outside the
// range or taken (another is assigned), an unknown protocol or a key requested twice
// (nothing is assigned), or a range with no port left for the protocol (none is). The
// error is for an invalid range only, wrapping ErrInvalidNodePortRange. The usual range
// is DefaultNodePortMin to DefaultNodePortMax.
func AssignNodePorts(lo, hi uint16, reqs []NodePortRequest) (map[NodePortKey]uint16, []NodePortProblem, error) {
	if err := ValidateNodePortRange(lo, hi); err != nil {
		return nil, nil, err
	}
	size := int(hi) - int(lo) + 1
	out, problems := allocate(reqs, scheme[NodePortKey, uint16, NodePortRequest]{
		size: size,
		order: func(a, b NodePortRequest) int {
			return cmp.Or(compareNodePortKeys(a.key(), b.key()), cmp.Compare(a.protocol(), b.protocol()), cmp.Compare(a.Requested, b.Requested))
		},
		compareKeys: compareNodePortKeys,
		check: func(r NodePortRequest) checked[NodePortKey, uint16] {
			space := slices.Index(nodePortProtocols, r.protocol())
			c := checked[NodePortKey, uint16]{key: r.key(), requested: r.Requested,
				slot: slotRequest{space: space, want: -1, home: int(stableHash(r.Key.Namespace, r.Key.Name, r.Port) % uint64(size))}}
			problem := func(kind ProblemKind, format string, args ...any) *NodePortProblem {
				return &NodePortProblem{Key: r.key(), Kind: kind, Requested: r.Requested, Message: fmt.Sprintf(format, args...)}
			}
			switch {
			case r.Key.Name == "" || r.Port == "":
				c.problem, c.drop = problem(ProblemInvalid, "a Service port without a Service name or a port gets no nodePort"), true
			case space < 0:
				c.problem, c.drop = problem(ProblemInvalid, "protocol %q is not one of %s: no nodePort", r.Protocol, strings.Join(nodePortProtocols, ", ")), true
			case r.Requested == 0:
			case r.Requested < lo || r.Requested > hi:
				c.problem = problem(ProblemOutsideRange, "nodePort %d is outside the NodePort range %d-%d", r.Requested, lo, hi)
			default:
				c.slot.want = int(r.Requested - lo)
			}
			return c
		},
		value: func(slot int) uint16 { return lo + uint16(slot) },
		describe: func(c checked[NodePortKey, uint16]) string {
			return fmt.Sprintf("nodePort %d/%s", c.requested, nodePortProtocols[c.slot.space])
		},
		keyOrder: "namespace, name and port",
		full: func(c checked[NodePortKey, uint16]) string {
			return fmt.Sprintf("no %s port left in the NodePort range %d-%d (all %d are assigned): the Service port has no nodePort", nodePortProtocols[c.slot.space], lo, hi, size)
		},
	})
	return out, problems, nil
}

// ValidateNodePortRange reports whether AssignNodePorts can use [lo, hi]: 1 <= lo <= hi.
// The error wraps ErrInvalidNodePortRange.
func ValidateNodePortRange(lo, hi uint16) error {
	if lo == 0 || lo > hi {
		return fmt.Errorf("%w: %d-%d: want 1 <= low <= high", ErrInvalidNodePortRange, lo, hi)
	}
	return nil
}
