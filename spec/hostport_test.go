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
	if got := ps.HostPorts(); !reflect.DeepEqual(got, want) {
		t.Errorf("HostPorts = %v, want %v (sorted, TCP by default, one entry per number and protocol)", got, want)
	}
	if got := want[2].String(); got != "8080/TCP" {
		t.Errorf("String = %q, want 8080/TCP", got)
	}
	if got := (&PodSpec{}).HostPorts(); len(got) != 0 {
		t.Errorf("no ports: HostPorts = %v", got)
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
