package network

import (
	"context"
	"net/netip"

	"github.com/shoalhq/shoal/executor"
)

// ForExecutor returns n as the executor's PodNetwork, for executor.WithPodNetwork.
func (n *PodNetwork) ForExecutor() executor.PodNetwork { return executorAdapter{n} }

// executorAdapter converts between the executor's types and the network's.
type executorAdapter struct{ n *PodNetwork }

func (a executorAdapter) Attach(ctx context.Context, id string, addr netip.Addr, ports []executor.PortMapping) (string, netip.Addr, error) {
	mappings := make([]PortMapping, len(ports))
	for i, p := range ports {
		mappings[i] = PortMapping(p)
	}
	at, err := a.n.Attach(ctx, id, addr, mappings)
	return at.Netns, at.Addr, err
}

func (a executorAdapter) Detach(ctx context.Context, id string) error { return a.n.Detach(ctx, id) }

func (a executorAdapter) Collect(ctx context.Context, keep func(id string) bool) error {
	return a.n.Collect(ctx, keep)
}
