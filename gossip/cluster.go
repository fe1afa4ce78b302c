package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrShutdown is returned by calls made after Shutdown.
var ErrShutdown = errors.New("gossip: cluster is shut down")

// ErrNotJoined is returned (wrapped, with the reason) by JoinError while a
// node started with seeds has not joined any of them.
var ErrNotJoined = errors.New("gossip: not joined")

// ErrInvalidInstance is returned (wrapped) by SetInstances for a list it
// cannot publish: an empty or duplicate ID, or an instance whose delta does
// not fit one gossip packet.
var ErrInvalidInstance = errors.New("gossip: invalid instance")

// Meta is what a node publishes about itself in its memberlist metadata.
type Meta struct {
	// Labels are the node's labels (kubernetes.io/hostname, topology.kubernetes.io/zone, …).
	Labels map[string]string
	// MilliCPU is the allocatable CPU in thousandths of a core.
	MilliCPU int64
	// MemoryBytes is the allocatable memory in bytes.
	MemoryBytes int64
	// Revision is the Git commit the node has applied.
	Revision string
	// APIAddr is the node's HTTP API, "host:port", for tools.
	APIAddr string
	// DNSAddr is the node's DNS server, "host:port".
	DNSAddr string
	// MaxInstances is how many instances the node runs at most (its
	// --max-instances-per-node); 0 means the planner's default. Every node
	// plans with each node's own value, so they compute the same placement.
	MaxInstances int
	// Allows is the set of what the node lets instances ask for beyond the
	// default sandbox, as bits of planner.Permission; gossip carries it as it is.
	Allows uint64
	// HostPaths are the directories hostPath volumes may mount from (its
	// --allow-host-path); Capabilities what capabilities.add may name beyond
	// the default set (its --allow-capability). They count against the
	// 512 bytes of metadata, as labels do.
	HostPaths, Capabilities []string
	// PodSubnet is the pod subnet the node claims for its instances ("" without a pod
	// network), and PodSubnetSince when it first claimed it (unix milliseconds, its own
	// clock): of two claims that overlap, the older keeps the subnet.
	PodSubnet      string
	PodSubnetSince int64
}

// NodeInfo is one member as seen through gossip.
type NodeInfo struct {
	// Name is the member's NodeName.
	Name string
	// Addr is the member's advertised IP address.
	Addr string
	// Labels, MilliCPU, MemoryBytes, Revision, APIAddr and DNSAddr come from
	// the member's Meta.
	Labels      map[string]string
	MilliCPU    int64
	MemoryBytes int64
	Revision    string
	APIAddr     string
	DNSAddr     string
	// MaxInstances, Allows, HostPaths and Capabilities come from the
	// member's Meta.
	MaxInstances            int
	Allows                  uint64
	HostPaths, Capabilities []string
	// PodSubnet and PodSubnetSince are the member's claim of a pod subnet.
	PodSubnet      string
	PodSubnetSince int64
	// Alive is false for a member that failed or left; it stays listed for
	// Config.DeadRetention.
	Alive bool
}

// Port is one named port of an instance.
type Port struct {
	Name     string
	Port     int32
	Protocol string
}

// InstanceInfo is the state of one instance (container) as published by the
// node that runs it.
type InstanceInfo struct {
	// ID identifies the instance; it is unique on its node.
	ID        string
	Namespace string
	Workload  string
	// Node is the name of the node that runs the instance.
	Node string
	// SpecHash identifies the spec the instance was started from.
	SpecHash string
	Ready    bool
	Running  bool
	// Addr is the instance's IP address.
	Addr  string
	Ports []Port
}

// Cluster is this node's membership in a gossip cluster.
//
// Concurrency: memberlist calls the delegates (delegate.go) from its own
// goroutines; they and the public methods share the state below under mu, held
// only for map updates and never while calling into memberlist (memberlist
// holds its own lock while calling the event delegate, so the lock order is
// always memberlist → mu → queue). Deltas and decisions are queued under mu so
// that the queue, which keeps one message per instance or decision key,
// always ends with the newest.
// One goroutine, run, owns joining, the follow-up resync, re-publishing
// metadata and pruning dead members; another, fetchLoop, fetches the
// certificates of members that announced themselves before their certificate
// arrived. Shutdown stops both.
type Cluster struct {
	cfg        Config
	epoch      int64 // this process's start time, see store
	gossipAddr string
	log        *slog.Logger
	ml         *memberlist.Memberlist
	queue      *memberlist.TransmitLimitedQueue
	trust      *trust

	changes chan struct{} // buffer 1: the view changed
	publish chan struct{} // buffer 1: our metadata changed, re-announce it
	certs   chan struct{} // buffer 1: a member is pending its certificate
	stop    chan struct{}
	done    chan struct{} // closed when run and fetchLoop have returned

	meta     atomic.Pointer[[]byte] // encoded Meta, read by memberlist via NodeMeta
	alive    atomic.Int32           // alive members including us, for retransmit limits
	joined   atomic.Bool            // another member was seen alive at least once
	lastWarn atomic.Int64           // unix ns of the last rejection logged as a warning
	rejected atomic.Uint64          // messages dropped by reject, which tests count

	mu        sync.Mutex
	store     *store
	members   map[string]*member
	localMeta Meta
	metaSeq   uint64                    // orders our metadata updates within this run
	pending   map[string]*pendingMember // members whose certificate has not arrived
	joinErr   string                    // why the last join attempt failed
	view      *View                     // cached Snapshot; nil when something changed
	nodes     []NodeInfo                // cached View.Nodes; nil when members changed
	orphans   map[string]bool           // owners with state but no member entry at the last prune
	decisions *decisionStore
	// decisionsVersion counts changes of decisions, so that saveDecisions
	// writes the file only when it changed.
	decisionsVersion uint64

	lifeMu   sync.Mutex
	left     atomic.Bool
	shutdown bool

	saveMu       sync.Mutex // serialises writes of Config.DecisionsFile
	savedVersion uint64     // the decisionsVersion last written
}

type member struct {
	info  NodeInfo
	addr  string    // "ip:port" for a follow-up push/pull
	since time.Time // when it was last seen to die or leave
	epoch int64     // of the metadata shown; older metadata is a replay
	seq   uint64
}

// pendingMember is a member whose metadata is signed with a certificate this
// node has not received yet. It is not shown until the certificate arrives.
type pendingMember struct {
	node  memberlist.Node
	tried time.Time // when a push/pull was last asked of it to fetch the certificate
}

// maxQueuedDeltas bounds the broadcast queue; beyond it the oldest deltas are
// dropped and left to push/pull, which repairs any lost delta.
const maxQueuedDeltas = 4096

// pruneEvery is how often dead members past DeadRetention are dropped.
const pruneEvery = time.Second

// resyncAfterJoin is when a node that just joined pulls the full state once
// more, from a random member. Its join exchange gave it its seed's state, but
// a seed that was itself still joining (a cold start) had little to give, and
// the owners' deltas may have been spent on nodes that already had them. It
// is long enough for such a seed to finish joining and short next to
// PushPullInterval.
const resyncAfterJoin = time.Second

// Start validates cfg, binds the gossip ports and starts joining cfg.Seeds in
// the background; it does not wait for a seed to answer. ctx bounds Start
// only: the Cluster runs until Shutdown.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gossip: start: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := time.Now()
	tr, err := newTrust(cfg.Verifier, cfg.Identity, now)
	if err != nil {
		return nil, err
	}
	mlc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:       cfg,
		epoch:     now.UnixNano(),
		log:       cfg.logger().With("node", cfg.NodeName),
		trust:     tr,
		changes:   make(chan struct{}, 1),
		publish:   make(chan struct{}, 1),
		certs:     make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		store:     newStore(cfg.NodeName, now.UnixNano()),
		decisions: newDecisionStore(),
		members:   map[string]*member{},
		pending:   map[string]*pendingMember{},
		localMeta: cloneMeta(cfg.Meta),
	}
	c.loadDecisions(now)
	transport, err := c.listen(mlc)
	if err != nil {
		return nil, err
	}
	if err := c.sealMeta(cfg.Meta); err != nil {
		transport.Shutdown()
		return nil, err
	}
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return max(1, int(c.alive.Load())) },
		RetransmitMult: cfg.DeltaRetransmitMult,
	}
	mlc.Transport = transport
	mlc.Delegate = (*delegate)(c)
	mlc.Events = (*delegate)(c)
	mlc.Alive = (*delegate)(c)

	// Create calls the delegates (NotifyJoin for ourselves), so c must be
	// complete before it.
	ml, err := memberlist.Create(mlc)
	if err != nil {
		transport.Shutdown()
		return nil, fmt.Errorf("gossip: start memberlist on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	c.ml = ml
	c.log.Info("gossip: started", "addr", c.Addr(), "encrypted", len(cfg.SecretKeys) > 0, "seeds", cfg.Seeds,
		"certificate", cfg.Identity.Fingerprint().String()[:16])
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); c.run() }()
	go func() { defer loops.Done(); c.fetchLoop() }()
	go func() { loops.Wait(); close(c.done) }()
	return c, nil
}

// listen binds the gossip ports behind the decoding guard and fills in the
// address this node advertises, which its signed metadata names (so it must be
// known before memberlist starts and asks for the metadata).
func (c *Cluster) listen(mlc *memberlist.Config) (*guardTransport, error) {
	var nt *memberlist.NetTransport
	var err error
	// A kernel-chosen port may be free for TCP but not UDP: retry, as memberlist does.
	for range 10 {
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mlc.BindAddr}, BindPort: mlc.BindPort, Logger: mlc.Logger,
		})
		if err == nil || mlc.BindPort != 0 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on %s:%d: %w", mlc.BindAddr, mlc.BindPort, err)
	}
	if mlc.BindPort == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
		mlc.AdvertisePort = mlc.BindPort
	}
	ip, port, err := nt.FinalAdvertiseAddr(mlc.AdvertiseAddr, mlc.AdvertisePort)
	if err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("gossip: advertise address: %w", err)
	}
	c.gossipAddr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	return newGuardTransport(nt, c.cfg.SecretKeys, func(what string, err error) { c.reject(what, err) }), nil
}

// sealMeta signs m as this node's next metadata and makes it what memberlist
// announces.
func (c *Cluster) sealMeta(m Meta) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nm := nodeMeta{Epoch: c.epoch, Seq: c.metaSeq + 1, GossipAddr: c.gossipAddr, Meta: m}
	if err := checkMetaSize(nm); err != nil {
		return err
	}
	buf := seal(c.cfg.Identity, c.cfg.NodeName, encodeMetaBody(nm))
	c.metaSeq = nm.Seq
	c.meta.Store(&buf)
	return nil
}

// JoinError says why this node is not part of a cluster: nil for a node
// started without seeds (a cluster of one by choice) and for one that has
// seen another member alive since it started; otherwise ErrNotJoined with
// the reason the last attempt failed (seeds unreachable, a wrong gossip
// key, or no member whose certificate this node trusts, or that trusts ours).
func (c *Cluster) JoinError() error {
	if len(c.cfg.Seeds) == 0 || c.joined.Load() {
		return nil
	}
	c.mu.Lock()
	reason := c.joinErr
	c.mu.Unlock()
	if reason == "" {
		reason = "joining"
	}
	return fmt.Errorf("%w: %s", ErrNotJoined, reason)
}

// Addr returns the advertised "ip:port" of this node, for other nodes' Seeds.
func (c *Cluster) Addr() string { return c.ml.LocalNode().Address() }

// Changes delivers a value whenever the view may have changed. It is
// coalescing (buffer 1, never blocks a sender): after a receive, call Snapshot
// for the latest state. It is never closed.
func (c *Cluster) Changes() <-chan struct{} { return c.changes }

// Snapshot returns the current view. It is free when nothing changed, and
// after a change costs the number of owners plus what changed: the lists of
// owners that did not change are those of the last view (see OwnerInstances).
func (c *Cluster) Snapshot() View {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.view == nil {
		v := c.buildViewLocked()
		c.view = &v
	}
	return *c.view
}

// buildViewLocked builds the view from what is cached: the nodes when members did not
// change, each owner's sorted instances when its records did not (see store.view).
// Its cost is the number of owners plus what changed, not the number of instances.
func (c *Cluster) buildViewLocked() View {
	if c.nodes == nil {
		c.nodes = make([]NodeInfo, 0, len(c.members))
		for _, m := range c.members {
			c.nodes = append(c.nodes, m.info)
		}
		slices.SortFunc(c.nodes, func(a, b NodeInfo) int { return cmp.Compare(a.Name, b.Name) })
	}
	return View{Nodes: c.nodes, Owners: c.store.view(c.aliveLocked), Decisions: c.decisions.view()}
}

func (c *Cluster) aliveLocked(name string) bool {
	m := c.members[name]
	return m != nil && m.info.Alive
}

// changedLocked drops the cached view, members included; call notify after unlocking.
func (c *Cluster) changedLocked() { c.view, c.nodes = nil, nil }

// instancesChangedLocked drops the cached view after a change of instance records only
// (the store knows which owners changed); call notify after unlocking.
func (c *Cluster) instancesChangedLocked() { c.view = nil }

// decisionsChangedLocked drops the cached view after a change of decisions and
// marks the decisions file out of date; call notify after unlocking.
func (c *Cluster) decisionsChangedLocked() {
	c.view = nil
	c.decisionsVersion++
}

// notify tells the consumer the view changed without ever waiting for it.
func (c *Cluster) notify() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// SetInstances replaces the list of instances this node runs. It diffs the
// list against the previous one and gossips one delta per added, changed or
// removed instance. Node is set to this node's name. The whole list is
// rejected, and nothing changes, if an ID is empty or repeated or an instance
// is too large for one gossip packet (about Config.UDPBufferSize − 160 bytes
// encoded: ample for IDs, names, an address and a few dozen ports) or has
// more than 64 ports.
func (c *Cluster) SetInstances(list []InstanceInfo) error {
	seen := make(map[string]bool, len(list))
	for _, inst := range list {
		if inst.ID == "" {
			return fmt.Errorf("%w: empty ID (namespace %q, workload %q)", ErrInvalidInstance, inst.Namespace, inst.Workload)
		}
		if seen[inst.ID] {
			return fmt.Errorf("%w: duplicate ID %q", ErrInvalidInstance, inst.ID)
		}
		seen[inst.ID] = true
		if len(inst.Ports) > maxPorts {
			return fmt.Errorf("%w: %q has %d ports, limit %d", ErrInvalidInstance, inst.ID, len(inst.Ports), maxPorts)
		}
		probe := delta{Owner: c.cfg.NodeName, Epoch: -1 << 63, Record: record{Counter: 1 << 63, Info: inst}}
		if n := len(encodeDeltaBody(probe)) + sealLen; n > c.cfg.maxDeltaBytes() {
			return fmt.Errorf("%w: %q encodes to %d bytes, limit %d", ErrInvalidInstance, inst.ID, n, c.cfg.maxDeltaBytes())
		}
	}

	c.mu.Lock()
	deltas := c.store.setLocal(list)
	for _, d := range deltas {
		c.queueLocked(newDeltaBroadcast(d, seal(c.cfg.Identity, c.cfg.NodeName, encodeDeltaBody(d))))
	}
	if len(deltas) > 0 {
		c.instancesChangedLocked()
	}
	c.mu.Unlock()
	if len(deltas) > 0 {
		c.notify()
	}
	return nil
}

// queueLocked queues a delta or decision for gossip, replacing any queued one
// about the same instance or key, and bounds the queue.
func (c *Cluster) queueLocked(b *broadcast) {
	c.queue.QueueBroadcast(b)
	if c.queue.NumQueued() > maxQueuedDeltas {
		c.queue.Prune(maxQueuedDeltas)
	}
}

// UpdateNode replaces this node's metadata and re-announces it in the
// background; it returns at once. It fails, changing nothing, with
// ErrMetaTooLarge if the sealed metadata exceeds 512 bytes, and with
// ErrBadMeta for what no node may declare (see Meta).
func (c *Cluster) UpdateNode(m Meta) error {
	if err := checkMeta(c.cfg.NodeName, m); err != nil {
		return err
	}
	if err := c.sealMeta(m); err != nil {
		return err
	}

	c.mu.Lock()
	c.localMeta = cloneMeta(m)
	if self := c.members[c.cfg.NodeName]; self != nil {
		self.info = nodeInfo(self.info.Name, self.info.Addr, c.localMeta, self.info.Alive)
	}
	c.changedLocked()
	c.mu.Unlock()

	select {
	case c.publish <- struct{}{}:
	default: // a publish is already pending; it will read the latest meta
	}
	c.notify()
	return nil
}

// Leave announces that this node is leaving, so peers drop it (and its
// instances) at once instead of waiting for failure detection. It waits up to
// timeout for the announcement to be sent. Call Shutdown afterwards.
func (c *Cluster) Leave(timeout time.Duration) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shutdown {
		return ErrShutdown
	}
	c.left.Store(true) // stop rejoining
	c.saveDecisionsLogged()
	if err := c.ml.Leave(timeout); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	c.log.Info("gossip: left the cluster")
	return nil
}

// Shutdown stops gossip without announcing it: peers detect the silence as a
// failure (use Leave first for a graceful exit). It stops the background
// goroutine and closes the sockets. It is safe to call more than once.
func (c *Cluster) Shutdown() error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.shutdown {
		return nil
	}
	c.shutdown = true
	close(c.stop)
	<-c.done
	c.saveDecisionsLogged()
	if err := c.ml.Shutdown(); err != nil {
		return fmt.Errorf("gossip: shutdown: %w", err)
	}
	return nil
}

// run owns joining, metadata re-announcement and pruning until Shutdown.
func (c *Cluster) run() {
	backoff := c.cfg.JoinBackoffMin
	joinTimer := time.NewTimer(0)
	defer joinTimer.Stop()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	var resync <-chan time.Time // armed after a successful join

	for {
		select {
		case <-c.stop:
			return
		case <-resync:
			resync = nil
			if !c.left.Load() {
				c.resync()
			}
		case <-c.publish:
			if c.left.Load() {
				continue // announcing new metadata would make us alive again
			}
			// UpdateNode waits until the alive message has been gossiped or
			// the timeout passes; either way it stays queued for gossip.
			if err := c.ml.UpdateNode(2 * c.cfg.ProbeInterval); err != nil {
				c.log.Debug("gossip: metadata update still spreading", "err", err)
			}
		case <-joinTimer.C:
			if c.alone() {
				if c.joinSeeds() {
					backoff = c.cfg.JoinBackoffMin
					resync = time.After(resyncAfterJoin)
				} else {
					backoff = min(2*backoff, c.cfg.JoinBackoffMax)
				}
				joinTimer.Reset(backoff)
			} else {
				c.joinMissingSeeds()
				joinTimer.Reset(c.cfg.JoinBackoffMax)
			}
		case now := <-prune.C:
			c.pruneDead(now)
			c.saveDecisionsLogged()
		}
	}
}

// alone reports whether this node should (re)join: it knows no other alive
// member and has not left.
func (c *Cluster) alone() bool {
	return len(c.cfg.Seeds) > 0 && !c.left.Load() && c.alive.Load() <= 1
}

// joinMissingSeeds joins the seeds that are not alive members. After a partition in which
// both sides kept several members, memberlist stops gossiping to the other side once
// GossipToTheDeadTime has passed, and neither side is alone, so without this the two halves
// would never merge again. A seed that does not answer costs one failed dial per
// JoinBackoffMax.
func (c *Cluster) joinMissingSeeds() {
	self := c.Addr()
	c.mu.Lock()
	alive := make(map[string]bool, len(c.members))
	for _, m := range c.members {
		if m.info.Alive {
			alive[m.addr] = true
		}
	}
	c.mu.Unlock()
	var missing []string
	for _, seed := range c.cfg.Seeds {
		if seed != self && !alive[seed] {
			missing = append(missing, seed)
		}
	}
	if len(missing) == 0 || c.left.Load() {
		return
	}
	if n, err := c.ml.Join(missing); n > 0 {
		c.log.Info("gossip: rejoined seeds that were not members", "seeds", missing, "reached", n)
	} else {
		c.log.Debug("gossip: seeds that are not members did not answer", "seeds", missing, "err", err)
	}
}

// joinSeeds tries each seed in turn until one answers, checking for Shutdown
// between attempts so that Shutdown waits for at most one TCPTimeout.
func (c *Cluster) joinSeeds() bool {
	self := c.Addr()
	var errs []error
	tried := 0
	for _, seed := range c.cfg.Seeds {
		if seed == self {
			continue
		}
		tried++
		select {
		case <-c.stop:
			return false
		default:
		}
		if _, err := c.ml.Join([]string{seed}); err != nil {
			errs = append(errs, err)
			continue
		}
		// Join merges the seed's member list before returning; a seed that
		// only led back to ourselves (another name for our address) does not count.
		if c.alive.Load() > 1 {
			c.log.Info("gossip: joined", "seed", seed, "members", c.alive.Load())
			return true
		}
	}
	reason := fmt.Sprint(errors.Join(errs...))
	switch {
	case tried == 0:
		reason = "waiting for another node to join: this node's only seed is itself"
	case len(errs) == 0:
		reason = "a seed answered, but no member could be verified: check that every node's certificate is issued by the CA in this node's CA certificate file, and this node's by theirs"
	}
	c.mu.Lock()
	c.joinErr = reason
	c.mu.Unlock()
	level := slog.LevelInfo
	if !c.joined.Load() {
		level = slog.LevelWarn // nothing runs until this node joins
	}
	c.log.Log(context.Background(), level, "gossip: join failed, retrying", "seeds", c.cfg.Seeds, "err", reason)
	return false
}

// wantCert asks run to fetch pending members' certificates; never blocks.
func (c *Cluster) wantCert() {
	select {
	case c.certs <- struct{}{}:
	default:
	}
}

// fetchLoop fetches pending members' certificates until Shutdown. It is a
// goroutine of its own so that a new member is shown at once, even while run
// waits on a seed that does not answer.
func (c *Cluster) fetchLoop() {
	for {
		select {
		case <-c.stop:
			return
		case <-c.certs:
			c.fetchCerts()
		}
	}
}

// fetchCerts exchanges state directly with members whose certificate has not
// arrived (their own push/pull state carries it), each at most once per
// JoinBackoffMin, so that a new node is shown within a round trip rather
// than at the next random push/pull.
func (c *Cluster) fetchCerts() {
	now := time.Now()
	c.mu.Lock()
	var addrs []string
	for _, p := range c.pending {
		if now.Sub(p.tried) >= c.cfg.JoinBackoffMin && len(addrs) < 8 {
			p.tried = now
			addrs = append(addrs, p.node.Address())
		}
	}
	c.mu.Unlock()
	if len(addrs) == 0 || c.left.Load() {
		return
	}
	if _, err := c.ml.Join(addrs); err != nil {
		c.log.Debug("gossip: fetching certificates of pending members", "members", addrs, "err", err)
	}
}

// resync exchanges full state with one random alive member (memberlist's
// Join is its only way to push/pull with a chosen node).
func (c *Cluster) resync() {
	c.mu.Lock()
	var peers []string
	for name, m := range c.members {
		if m.info.Alive && name != c.cfg.NodeName {
			peers = append(peers, m.addr)
		}
	}
	c.mu.Unlock()
	if len(peers) == 0 {
		return
	}
	peer := peers[rand.IntN(len(peers))]
	if _, err := c.ml.Join([]string{peer}); err != nil {
		c.log.Debug("gossip: resync after join failed", "peer", peer, "err", err)
	}
}

// pruneDead forgets members that have been dead or gone for DeadRetention,
// with their instance state, and instance state whose owner has not been a
// member for a whole prune interval (tentative state that arrived before its
// owner's membership, or about a member already forgotten).
func (c *Cluster) pruneDead(now time.Time) {
	c.mu.Lock()
	changed := false
	for name, m := range c.members {
		if !m.info.Alive && name != c.cfg.NodeName && now.Sub(m.since) >= c.cfg.DeadRetention {
			delete(c.members, name)
			c.store.forget(name)
			changed = true
		}
	}
	orphans := map[string]bool{}
	for _, name := range c.store.ownerNames() {
		if c.members[name] != nil {
			continue
		}
		if c.orphans[name] {
			c.store.forget(name) // never shown, so the view does not change
		} else {
			orphans[name] = true
		}
	}
	c.orphans = orphans
	c.trust.prune(func(name string) bool {
		_, owner := c.store.owners[name]
		return c.members[name] != nil || c.pending[name] != nil || owner || c.decisions.hasAuthor(name)
	}, now)
	// A decision whose certificate expired no longer verifies anywhere.
	if c.decisions.retain(func(d sealedDecision) bool { return c.trust.has(d.seal.fingerprint()) }) {
		c.decisionsChangedLocked()
		changed = true
	}
	if changed {
		c.changedLocked()
	}
	c.mu.Unlock()
	if changed {
		c.notify()
	}
}

func nodeInfo(name, addr string, m Meta, alive bool) NodeInfo {
	return NodeInfo{
		Name: name, Addr: addr, Labels: m.Labels,
		MilliCPU: m.MilliCPU, MemoryBytes: m.MemoryBytes,
		Revision: m.Revision, APIAddr: m.APIAddr, DNSAddr: m.DNSAddr,
		MaxInstances: m.MaxInstances, Allows: m.Allows, HostPaths: m.HostPaths, Capabilities: m.Capabilities,
		PodSubnet: m.PodSubnet, PodSubnetSince: m.PodSubnetSince,
		Alive: alive,
	}
}

// cloneMeta copies the caller's labels so later edits to their map cannot
// change a published View.
func cloneMeta(m Meta) Meta {
	m.Labels = maps.Clone(m.Labels)
	m.HostPaths, m.Capabilities = slices.Clone(m.HostPaths), slices.Clone(m.Capabilities)
	return m
}
