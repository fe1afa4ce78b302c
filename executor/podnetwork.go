package executor

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PodNetwork gives instances network namespaces of their own, the Kubernetes network
// model: each instance has its own address, and its containers share it. The executor
// uses one when given WithPodNetwork; network.PodNetwork is one (through its ForExecutor
// adapter), so that the executor does not depend on the CNI.
type PodNetwork interface {
	// Attach gives instance id a network namespace with an address (addr when valid,
	// else one the pod network picks) and forwards the node's ports to it. It is
	// idempotent: an ID already attached gets the same namespace and address. netns is a
	// path the containers' runtime can join; got is the instance's address.
	Attach(ctx context.Context, id string, addr netip.Addr, ports []PortMapping) (netns string, got netip.Addr, err error)
	// Detach removes what Attach made; an ID not attached is not an error.
	Detach(ctx context.Context, id string) error
	// Collect detaches every attached instance for which keep returns false, including
	// what a crash left half made.
	Collect(ctx context.Context, keep func(id string) bool) error
}

// PortMapping forwards a port of the node to a port of an instance: a container port's
// hostPort.
type PortMapping struct {
	HostPort, ContainerPort uint16
	// Protocol is TCP, UDP or SCTP.
	Protocol string
	// HostIP, when valid, is the only node address the port is opened on.
	HostIP netip.Addr
}

// podNet is where an instance's containers are: its namespace and address. The zero
// value is the node's network.
type podNet struct {
	netns string
	addr  netip.Addr
}

// podNetworked reports whether s gets a network namespace of its own: with a pod network,
// unless it asks for the node's.
func (c *Containerd) podNetworked(s *InstanceSpec) bool {
	return c.cfg.podNetwork != nil && !s.HostNetwork
}

// attachNetwork gives s its namespace (the one it has already, for an instance some of
// whose containers exist) and writes its /etc/hosts, or returns the zero podNet for host
// networking.
func (c *Containerd) attachNetwork(ctx context.Context, s *InstanceSpec) (podNet, error) {
	if !c.podNetworked(s) {
		return podNet{}, nil
	}
	netns, addr, err := c.cfg.podNetwork.Attach(ctx, s.ID, s.Addr, portMappings(s))
	if err != nil {
		return podNet{}, fmt.Errorf("pod network: %w", err)
	}
	if err := writeNameFiles(c.instanceDir(s.ID), hostname(s.ID), addr); err != nil {
		return podNet{}, err
	}
	return podNet{netns: netns, addr: addr}, nil
}

// detachNetwork removes an instance's namespace, if there is a pod network.
func (c *Containerd) detachNetwork(ctx context.Context, id string) error {
	if c.cfg.podNetwork == nil {
		return nil
	}
	if err := c.cfg.podNetwork.Detach(ctx, id); err != nil {
		return fmt.Errorf("pod network: %w", err)
	}
	return nil
}

// portMappings are the host ports of s's containers.
func portMappings(s *InstanceSpec) []PortMapping {
	var out []PortMapping
	for _, c := range s.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			m := PortMapping{HostPort: uint16(p.HostPort), ContainerPort: uint16(p.Port), Protocol: p.Protocol}
			m.HostIP, _ = netip.ParseAddr(p.HostIP) // Validate checked it; empty stays invalid
			out = append(out, m)
		}
	}
	return out
}

// networkOpts put a container in its instance's network: the node's namespace, hostname
// and /etc/hosts for host networking; else the instance's namespace, a UTS namespace of
// its own with the instance ID as hostname (Kubernetes' pod name; each container has its
// own UTS namespace, all with the same name, since there is no pause container to share
// one), and an /etc/hosts that names the instance's address and an /etc/hostname, as the
// kubelet gives a pod.
func (c *Containerd) networkOpts(s *InstanceSpec, pn podNet) []oci.SpecOpts {
	if !pn.addr.IsValid() {
		return []oci.SpecOpts{c.networkNamespace(), oci.WithHostNamespace(specs.UTSNamespace), oci.WithHostHostsFile}
	}
	dir := c.instanceDir(s.ID)
	return []oci.SpecOpts{
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pn.netns}),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.UTSNamespace}),
		oci.WithHostname(hostname(s.ID)),
		oci.WithMounts([]specs.Mount{
			readOnlyFile(hostsPath(dir), "/etc/hosts"),
			readOnlyFile(hostnamePath(dir), "/etc/hostname"),
		}),
	}
}

// readOnlyFile binds a file of the host read-only at dest.
func readOnlyFile(src, dest string) specs.Mount {
	return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}
}

// hostname is an instance's hostname: its ID, cut to the 63 bytes of a DNS label (the
// planner's IDs fit).
func hostname(id string) string {
	if len(id) > 63 {
		return strings.TrimRight(id[:63], "-.")
	}
	return id
}

func hostsPath(instanceDir string) string    { return filepath.Join(instanceDir, "hosts") }
func hostnamePath(instanceDir string) string { return filepath.Join(instanceDir, "hostname") }

// writeNameFiles writes the /etc/hosts and /etc/hostname of an instance with its own
// namespace, as the kubelet writes a pod's.
func writeNameFiles(instanceDir, name string, addr netip.Addr) error {
	if err := os.MkdirAll(instanceDir, 0o700); err != nil {
		return err
	}
	hosts := "# Kubernetes-managed hosts file (written by Shoal).\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"fe00::0\tip6-mcastprefix\n" +
		"fe00::1\tip6-allnodes\n" +
		"fe00::2\tip6-allrouters\n" +
		addr.String() + "\t" + name + "\n"
	return errors.Join(
		writeVolumeFile(instanceDir, File{Path: "hosts", Mode: 0o644, Data: []byte(hosts)}),
		writeVolumeFile(instanceDir, File{Path: "hostname", Mode: 0o644, Data: []byte(name + "\n")}),
	)
}

// CollectNetworks removes the pod network attachments of instances that have no
// container left: those of instances stopped while no agent ran, or whose Start or Stop
// a crash cut short. Instances being started meanwhile are kept. Without a pod network
// it does nothing. The agent calls it after adopting what runs, and from time to time.
func (c *Containerd) CollectNetworks(ctx context.Context) error {
	if c.cfg.podNetwork == nil {
		return nil
	}
	starting, done := c.starting.collecting()
	defer done()
	cts, err := c.shoalContainers(c.withNS(ctx), "")
	if err != nil {
		return fmt.Errorf("executor: collect networks: %w", err)
	}
	exists := make(map[string]bool, len(cts))
	for _, l := range cts {
		exists[l.labels[LabelInstance]] = true
	}
	keep := func(id string) bool { return exists[id] || starting(id) }
	if err := c.cfg.podNetwork.Collect(ctx, keep); err != nil {
		return fmt.Errorf("executor: collect networks: %w", err)
	}
	return nil
}

// startTracker knows which instances are being started with a pod network, between their
// Attach and the creation of their containers, when only the network knows of them.
// CollectNetworks keeps those, and those that began while it ran: an instance it did not
// find in containerd may have begun and finished since it looked.
type startTracker struct {
	mu       sync.Mutex
	inFlight map[string]int
	// since holds the IDs begun since the oldest running collection started; nil when
	// none runs.
	since       map[string]bool
	collections int
}

// begin records that id is being started; the caller calls end once its containers exist
// or its Start has undone itself.
func (t *startTracker) begin(id string) (end func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight == nil {
		t.inFlight = map[string]int{}
	}
	t.inFlight[id]++
	if t.since != nil {
		t.since[id] = true
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.inFlight[id]--; t.inFlight[id] == 0 {
			delete(t.inFlight, id)
		}
	}
}

// collecting starts a collection: starting reports whether an ID is being started or
// began since; the caller calls done when the collection ends.
func (t *startTracker) collecting() (starting func(id string) bool, done func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.collections++; t.since == nil {
		t.since = map[string]bool{}
	}
	starting = func(id string) bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.inFlight[id] > 0 || t.since[id]
	}
	done = func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.collections--; t.collections == 0 {
			t.since = nil
		}
	}
	return starting, done
}
