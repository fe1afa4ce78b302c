package spec

import (
	"cmp"
	"slices"
	"strconv"
)

// HostPort is a port an instance holds on its node: two instances on one node must not
// hold the same number with the same protocol, while TCP, UDP and SCTP of one number do
// not collide.
type HostPort struct {
	Port int32
	// Protocol is ProtocolTCP, ProtocolUDP or ProtocolSCTP, never empty.
	Protocol string
}

// String is the port as users write it, "8080/TCP".
func (p HostPort) String() string { return strconv.Itoa(int(p.Port)) + "/" + p.Protocol }

// AsHostPort is the host port a container port takes on the node's network: its own number.
// The protocol defaults to TCP here as well as in defaulting, so a spec that was never
// defaulted derives the same port.
func (p ContainerPort) AsHostPort() HostPort {
	return HostPort{Port: p.ContainerPort, Protocol: cmp.Or(p.Protocol, ProtocolTCP)}
}

// HostPorts is the set of ports an instance of the pod holds on its node, sorted by
// number then protocol. An instance on the node's network (hostNetwork, or every instance
// when the cluster has no pod network) holds every container port; an instance with a
// network of its own holds only the hostPorts it asks for. Ports of init containers
// count as Kubernetes counts them: held for the instance's life.
func (ps *PodSpec) HostPorts(podNetwork bool) []HostPort {
	var ports []HostPort
	for _, list := range [2][]Container{ps.InitContainers, ps.Containers} {
		for i := range list {
			for _, p := range list[i].Ports {
				switch {
				case !podNetwork || ps.HostNetwork:
					ports = append(ports, p.AsHostPort())
				case p.HostPort != 0:
					ports = append(ports, HostPort{Port: p.HostPort, Protocol: cmp.Or(p.Protocol, ProtocolTCP)})
				}
			}
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

// AllContainers returns the pod's init containers, in order, then its app containers:
// the order they start in. Each is a pointer into the spec.
func (ps *PodSpec) AllContainers() []*Container {
	out := make([]*Container, 0, len(ps.InitContainers)+len(ps.Containers))
	for i := range ps.InitContainers {
		out = append(out, &ps.InitContainers[i])
	}
	for i := range ps.Containers {
		out = append(out, &ps.Containers[i])
	}
	return out
}
