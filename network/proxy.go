package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"sync"
	"time"

	"github.com/google/nftables"
)

// Protocol is a Service port's transport protocol, spelled as in Kubernetes manifests.
type Protocol string

// Transport protocols of Service ports.
const (
	ProtocolTCP Protocol = "TCP"
	ProtocolUDP Protocol = "UDP"
	// ProtocolSCTP is accepted in Services, as Kubernetes accepts it, but not proxied.
	ProtocolSCTP Protocol = "SCTP"
)

// Proxied reports whether the proxy forwards p: TCP and UDP. SCTP is not: its NAT needs
// the kernel's sctp support, which the machines Shoal is tested on lack (no sctp module,
// socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails), so rules for it would go untested.
func Proxied(p Protocol) bool { return p == ProtocolTCP || p == ProtocolUDP }

// Endpoint is one ready instance behind a Service port: the instance's address and the
// container port the Service's targetPort resolves to there.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
}

// String formats the endpoint as address:port.
func (e Endpoint) String() string { return netip.AddrPortFrom(e.Addr, e.Port).String() }

// ServicePort is one port of a Service and where its traffic goes.
type ServicePort struct {
	// Name is the port's name in the Service; unique within it (empty for a Service's only
	// unnamed port). namespace/name/protocol/name is the port's ID, in refusals and as the
	// comment of its elements in the table.
	Name string
	// Protocol is ProtocolTCP or ProtocolUDP (see Proxied).
	Protocol Protocol
	// Port is the Service's port: clients connect to VIP:Port.
	Port uint16
	// NodePort, when not 0, also exposes the port on every local address of the node.
	NodePort uint16
	// Endpoints are the ready instances' address:targetPort, resolved by the caller. Their
	// order does not matter; duplicates count once. Empty: connections are refused.
	Endpoints []Endpoint
}

// Service is what the proxy programs for one Kubernetes Service that has a virtual IP.
type Service struct {
	Namespace, Name string
	// VIP is the Service's virtual IP (an IPv4 address outside the cluster CIDR).
	VIP   netip.Addr
	Ports []ServicePort
}

// Limits on one Sync call. A call over any of them is refused whole (ErrProxyLimit) and
// changes nothing; each bounds the work and kernel memory a call can ask for.
const (
	// MaxProxyServices is the most Services one Sync accepts.
	MaxProxyServices = 10000
	// MaxProxyPortsPerService is the most ports one Service may have.
	MaxProxyPortsPerService = 100
	// MaxProxyServicePorts is the most ports, over all Services, one Sync accepts.
	MaxProxyServicePorts = 20000
	// MaxProxyEndpointsPerPort is the most endpoints one Service port may have.
	MaxProxyEndpointsPerPort = 1000
	// MaxProxyEndpoints is the most endpoints, over all Service ports, one Sync accepts.
	MaxProxyEndpoints = 100000
	// maxProxyNameLen bounds a namespace, Service or port name (Kubernetes allows 253 for
	// a namespace or Service name, 15 for a port name; we are lenient but bounded).
	maxProxyNameLen = 253
)

// Errors returned by NewProxy and Sync; callers branch on them with errors.Is.
var (
	// ErrInvalidProxyConfig wraps every ProxyConfig field that fails validation.
	ErrInvalidProxyConfig = errors.New("network: invalid proxy config")
	// ErrServiceRefused means a Service, or one of its ports or endpoints, was not
	// programmed: a field is out of range or it collides with another Service. Sync joins
	// one such error per refusal and still programs everything else.
	ErrServiceRefused = errors.New("network: service refused")
	// ErrProxyLimit means a Sync call exceeded one of the MaxProxy limits; it changed nothing.
	ErrProxyLimit = errors.New("network: proxy limit exceeded")
	// ErrProxyClosed is returned by a Proxy after Close or Detach.
	ErrProxyClosed = errors.New("network: proxy closed")
)

// ProxyConfig configures a Proxy. NewProxy fills in the defaults and validates it.
type ProxyConfig struct {
	// Table is the name of the proxy's own nftables table (family ip). Default: "shoal".
	Table string
	// ClusterCIDR is the pod range of the whole cluster. Traffic from it to an address
	// outside it is masqueraded (pod egress), and Service traffic from outside it (the node
	// itself, other hosts) is masqueraded so replies come back through this node. Required.
	ClusterCIDR netip.Prefix
	// PodSubnet is this node's own pod subnet, inside ClusterCIDR. Service traffic from one
	// of its instances that lands on one of its instances (the caller itself included:
	// hairpin) is masqueraded, so the reply comes back through the node to be un-NATed
	// rather than straight across the bridge. Default: ClusterCIDR, which masquerades all
	// Service traffic between instances.
	PodSubnet netip.Prefix
	// NetNS is the path of the network namespace to program (e.g. /var/run/netns/NAME).
	// Empty: the namespace of the thread that calls NewProxy.
	NetNS string
	// Logger receives a line per Sync that changes something. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field that has a default set to it: the one place
// the defaults live.
func (c ProxyConfig) withDefaults() ProxyConfig {
	if c.Table == "" {
		c.Table = "shoal"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.ClusterCIDR = c.ClusterCIDR.Masked()
	if !c.PodSubnet.IsValid() {
		c.PodSubnet = c.ClusterCIDR
	}
	c.PodSubnet = c.PodSubnet.Masked()
	return c
}

// proxyTableName is what we accept as a table name: short, and printable by `nft list`.
var proxyTableName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)

// validate checks a config that withDefaults has filled in.
func (c *ProxyConfig) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidProxyConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case !proxyTableName.MatchString(c.Table):
		return bad("table %q: want a letter, then up to 63 letters, digits, '_', '.' or '-'", c.Table)
	case !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4() || c.ClusterCIDR.Bits() == 0:
		return bad("cluster CIDR %v: want an IPv4 prefix shorter than the whole space", c.ClusterCIDR)
	case !c.PodSubnet.Addr().Is4() || c.PodSubnet.Bits() < c.ClusterCIDR.Bits() || !c.ClusterCIDR.Contains(c.PodSubnet.Addr()):
		return bad("pod subnet %v: want a prefix inside the cluster CIDR %v", c.PodSubnet, c.ClusterCIDR)
	}
	return nil
}

// Proxy spreads the traffic to each Service's virtual IP and NodePorts over the Service's
// endpoints, in the kernel, with an nftables table of its own (family ip: IPv4 only) in the
// style of kube-proxy's nftables mode, but with every Service's endpoints held as data, so
// that a change costs in proportion to itself (see proxy_plan.go). It remembers what it
// programmed, so that each Sync sends only what changed, in one atomic transaction. Its
// methods may be called from any goroutine; they run one at a time.
type Proxy struct {
	mu    sync.Mutex
	cfg   ProxyConfig
	log   *slog.Logger
	netns *os.File       // the namespace programmed; nil once closed
	conn  *nftables.Conn // lasting netlink connection into netns
	setID uint32         // last set ID used in a transaction (IDs name new sets within one)

	// index is what the proxy was last given and what it programs of it; sizes are the
	// spread sizes whose chains exist (only valid while !rebuild).
	index *proxyIndex
	sizes map[int]bool
	// last is how long the last Sync took.
	last proxySyncStats
	// rebuild says the kernel's state is unknown (a new Proxy, a failed transaction): the
	// next Sync replaces the whole table in one transaction.
	rebuild bool
}

// proxySyncStats is how long one Sync took: in memory (checking the Services, finding what
// changed) and in the kernel (one transaction).
type proxySyncStats struct{ inMemory, kernel time.Duration }

// NewProxy opens the namespace and makes sure the proxy's table exists. An existing table
// (left by a daemon that was restarted) keeps serving as it is until the first Sync, which
// replaces it, in one atomic transaction, with the table its Services call for: a restart
// never interrupts Service traffic.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	netns, err := openProxyNetNS(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "proxy", "table", cfg.Table),
		netns:   netns,
		sizes:   map[int]bool{},
		rebuild: true,
	}
	p.index = newProxyIndex(&p.cfg)
	if err := p.start(); err != nil {
		p.release()
		return nil, err
	}
	return p, nil
}

// openProxyNetNS opens the namespace at path, or the calling thread's when path is empty,
// so that every connection the proxy opens later lands in the same one.
func openProxyNetNS(path string) (*os.File, error) {
	if path == "" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		path = "/proc/thread-self/ns/net"
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("network: proxy: open netns: %w", err)
	}
	return f, nil
}

// start connects and creates the table when it does not exist yet.
func (p *Proxy) start() error {
	if err := p.connect(); err != nil {
		return err
	}
	exists, err := p.tableExists()
	if err != nil {
		return err
	}
	if exists {
		p.log.Info("proxy taking over existing table; the first sync replaces it")
		return nil
	}
	if err := p.apply(rebuildProxyTxn(nil)); err != nil {
		return fmt.Errorf("network: proxy: create table %s: %w", p.cfg.Table, err)
	}
	p.rebuild = false
	p.log.Info("proxy table created")
	return nil
}

// Sync makes the kernel spread traffic as services say, sending only what differs from
// the last Sync: a change to one Service's endpoints touches only that Service's chains and
// map elements, whatever the number of Services. services is the whole set for this node
// (a Service left out is removed). It refuses (and reports, joined in the error, wrapping
// ErrServiceRefused) each Service, port or endpoint that is invalid or collides with
// another, and programs all the others. A call over a limit (ErrProxyLimit) changes nothing.
func (p *Proxy) Sync(services []Service) error {
	return p.program(func() ([]proxyChange, []error, error) { return p.index.update(services) })
}

// Update is Sync for a caller that knows what changed since the last Sync or Update:
// changed holds the Services that are new or differ (whole), removed names those that are
// gone, and every other Service stays as it is. It costs what changed, not the number of
// Services programmed.
func (p *Proxy) Update(changed []Service, removed []ServiceKey) error {
	return p.program(func() ([]proxyChange, []error, error) { return p.index.updateSome(changed, removed) })
}

// program takes an update of the index and brings the kernel to it.
func (p *Proxy) program(update func() ([]proxyChange, []error, error)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.netns == nil {
		return ErrProxyClosed
	}
	start := time.Now()
	changes, refused, err := update()
	if err != nil {
		return err
	}
	var txn *proxyTxn
	if p.rebuild {
		txn = rebuildProxyTxn(p.index.accepted)
	} else {
		txn = diffProxyChanges(changes, p.sizes)
	}
	planned := time.Now()
	p.last = proxySyncStats{inMemory: planned.Sub(start)}
	if !txn.empty() {
		if err := p.apply(txn); err != nil {
			p.rebuild = true
			return errors.Join(append(refused, fmt.Errorf("network: proxy sync: %w", err))...)
		}
		p.rebuild = false
		if !txn.full {
			if err := p.forgetStaleFlows(staleProxyUDPFlows(changes)); err != nil {
				p.log.Warn("proxy could not forget UDP flows to removed endpoints", "err", err)
			}
		}
		p.last.kernel = time.Since(planned)
		p.log.Info("proxy synced", "ports", len(p.index.accepted), "changed", txn.changed,
			"added", len(txn.add), "deleted", len(txn.del), "full", txn.full,
			"planned", p.last.inMemory, "applied", p.last.kernel)
	}
	return errors.Join(refused...)
}

// Close deletes the proxy's table (and with it every rule it programmed) and releases the
// namespace. Connections already set up keep their translation in conntrack until they end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.netns == nil {
		return nil
	}
	defer p.release()
	exists, err := p.tableExists()
	if err != nil || !exists {
		return err
	}
	p.conn.DelTable(p.table())
	if err := p.conn.Flush(); err != nil {
		return fmt.Errorf("network: proxy: delete table %s: %w", p.cfg.Table, err)
	}
	p.log.Info("proxy table deleted")
	return nil
}

// Detach releases the namespace and leaves the table in place, for a daemon that stops
// without tearing down the network (a new Proxy takes the table over).
func (p *Proxy) Detach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.netns != nil {
		p.release()
	}
	return nil
}

// release closes the connection and the namespace; the Proxy is unusable afterwards.
func (p *Proxy) release() {
	if p.conn != nil {
		_ = p.conn.CloseLasting()
		p.conn = nil
	}
	_ = p.netns.Close()
	p.netns = nil
	p.index = nil
}
