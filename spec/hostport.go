package spec

import (
	"cmp"
	"slices"
	"strconv"
)

// HostPort is a port an instance holds on its node. Instances run with host networking,
// so every container port is a node resource: two instances on one node must not hold the
// same number with the same protocol, while TCP and UDP of one number do not collide.
type HostPort struct {
	Port int32
	// Protocol is ProtocolTCP or ProtocolUDP, never empty.
	Protocol string
}

// String is the port as users write it, "8080/TCP".
func (p HostPort) String() string { return strconv.Itoa(int(p.Port)) + "/" + p.Protocol }

// HostPort is the host port a container port takes. The protocol defaults to TCP here as
// well as in defaulting, so a spec that was never defaulted derives the same port.
func (p ContainerPort) HostPort() HostPort {
	return HostPort{Port: p.ContainerPort, Protocol: cmp.Or(p.Protocol, ProtocolTCP)}
}

// HostPorts is the set of host ports an instance of the pod holds on its node, sorted by
// number then protocol.
func (ps *PodSpec) HostPorts() []HostPort {
	var ports []HostPort
	for _, c := range ps.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.HostPort())
		}
	}
	slices.SortFunc(ports, func(a, b HostPort) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return slices.Compact(ports)
}

// NamedPort is the number of the port called name among ports, as a probe's port or a
// Service's targetPort may name a container port.
func NamedPort(ports []ContainerPort, name string) (int32, bool) {
	for _, p := range ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}
