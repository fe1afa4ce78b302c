package spec

import (
	"reflect"
	"testing"
)

func TestHostPorts(t *testing.T) {
	ps := &PodSpec{Containers: []Container{
		{Name: "app", Ports: []ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 53, Protocol: ProtocolUDP}}},
		{Name: "side", Ports: []ContainerPort{{ContainerPort: 53, Protocol: ProtocolTCP}, {ContainerPort: 8080, Protocol: ProtocolTCP}}},
		{Name: "none"},
	}}
	want := []HostPort{{53, ProtocolTCP}, {53, ProtocolUDP}, {8080, ProtocolTCP}}
	if got := ps.HostPorts(false); !reflect.DeepEqual(got, want) {
		t.Errorf("HostPorts = %v, want %v (sorted, TCP by default, one entry per number and protocol)", got, want)
	}
	if got := want[2].String(); got != "8080/TCP" {
		t.Errorf("String = %q, want 8080/TCP", got)
	}
	if got := (&PodSpec{}).HostPorts(false); len(got) != 0 {
		t.Errorf("no ports: HostPorts = %v", got)
	}
	// With a pod network, container ports are the instance's own; only hostPorts (by
	// their own number) and hostNetwork instances hold ports of the node.
	if got := ps.HostPorts(true); len(got) != 0 {
		t.Errorf("pod network, no hostPort: HostPorts = %v, want none", got)
	}
	ps.Containers[1].Ports[1].HostPort = 80
	if got, want := ps.HostPorts(true), []HostPort{{80, ProtocolTCP}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pod network, hostPort 80: HostPorts = %v, want %v", got, want)
	}
	ps.HostNetwork = true
	if got, want := ps.HostPorts(true), []HostPort{{53, ProtocolTCP}, {53, ProtocolUDP}, {8080, ProtocolTCP}}; !reflect.DeepEqual(got, want) {
		t.Errorf("pod network, hostNetwork: HostPorts = %v, want %v", got, want)
	}
}

func TestNamedPort(t *testing.T) {
	ports := []ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9090}, {Name: "dns", ContainerPort: 53, Protocol: ProtocolUDP}}
	if n, ok := NamedPort(ports, "dns"); !ok || n != 53 {
		t.Errorf("NamedPort(dns) = %d, %v; want 53, true", n, ok)
	}
	if n, ok := NamedPort(ports, "grpc"); ok {
		t.Errorf("NamedPort(grpc) = %d, true; want no port", n)
	}
}
