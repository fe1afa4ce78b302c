package gossip

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalhq/shoal/identity"
)

// Errors returned by Config.Validate and Start. Callers branch on them with errors.Is.
var (
	// ErrInvalidConfig wraps every Config field that fails validation.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrNoKey means no SecretKeys were given and AllowPlaintext is false:
	// Shoal refuses to gossip in clear text unless told to.
	ErrNoKey = errors.New("gossip: no encryption key (set SecretKeys, or AllowPlaintext to gossip in clear text)")
	// ErrBadKey means a key is not valid base64 or not 16, 24 or 32 bytes long.
	ErrBadKey = errors.New("gossip: encryption key must be 16, 24 or 32 bytes (AES-128/192/256)")
)

// maxNameLen bounds NodeName so that a delta (which carries it) always fits a packet.
const maxNameLen = 128

// Config configures one gossip member. Build it from DefaultConfig (or FastConfig,
// SafeConfig), override what you need, and pass it to Start, which validates it.
// The timing fields map one to one onto memberlist.Config; see DefaultConfig for
// what they add up to.
type Config struct {
	// NodeName is this node's name, unique in the cluster (at most 128 bytes).
	// Default: the host name.
	NodeName string

	// BindAddr is the IP address to listen on for gossip, UDP and TCP.
	// Default: "0.0.0.0".
	BindAddr string
	// BindPort is the UDP and TCP port to listen on. 0 lets the kernel pick a
	// free port (read it back with Cluster.Addr). Default: 7946.
	BindPort int

	// AdvertiseAddr is the IP address other nodes use to reach this one.
	// Empty means the bind address, or the first private IP when bound to
	// 0.0.0.0 (memberlist's rule).
	AdvertiseAddr string
	// AdvertisePort is the port other nodes use to reach this one.
	// 0 means the bind port.
	AdvertisePort int

	// Seeds lists "host:port" addresses of nodes to join. Joining runs in the
	// background and retries with backoff (JoinBackoffMin doubling up to
	// JoinBackoffMax) until one seed answers, so nodes may start in any order.
	// It is retried the same way whenever this node finds itself alone again.
	// This node's own address may be listed; it is skipped.
	Seeds []string

	// SecretKeys is the gossip keyring: each key is 16, 24 or 32 bytes
	// (AES-128/192/256, see ParseKey). The first key encrypts everything this
	// node sends; every key is tried to decrypt what it receives. At least one
	// key is required unless AllowPlaintext is set. See the package doc for
	// rotation.
	SecretKeys [][]byte
	// AllowPlaintext permits starting without SecretKeys. Such a node can only
	// talk to other plaintext nodes. Default: false.
	AllowPlaintext bool

	// Identity is this node's certificate and key (identity.Load): every
	// record this node publishes is signed with the key, and the certificate,
	// issued by the cluster CA, binds it to NodeName. Required; its name must
	// be NodeName.
	Identity *identity.Identity
	// Verifier decides which certificates are trusted: those issued by the
	// cluster CA and not revoked (identity.NewVerifier). Required.
	Verifier *identity.Verifier

	// Meta is the metadata this node publishes at start (labels, capacity,
	// revision, API and DNS addresses). Change it later with Cluster.UpdateNode.
	// Encoded, it must fit memberlist's 512-byte node meta limit.
	Meta Meta

	// ProbeInterval is the time between failure probes of one random peer.
	// Lower detects failures sooner at the cost of more packets.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for a direct probe's ack before asking
	// IndirectChecks peers to probe. Set it near the 99th percentile RTT plus
	// scheduling delay; it must be below ProbeInterval.
	ProbeTimeout time.Duration
	// IndirectChecks is how many peers are asked to probe a node that missed
	// a direct probe.
	IndirectChecks int
	// SuspicionMult scales how long a node stays suspect before it is declared
	// dead: SuspicionMult * max(1, log10(N)) * ProbeInterval, for N nodes.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion time when peers do not
	// confirm the suspicion: at most SuspicionMaxTimeoutMult times the above.
	SuspicionMaxTimeoutMult int

	// GossipInterval is the time between gossip rounds that send queued
	// broadcasts (membership changes, instance deltas) to GossipNodes peers.
	GossipInterval time.Duration
	// GossipNodes is the number of random peers gossiped to per round.
	GossipNodes int
	// GossipToTheDeadTime is how long a dead node is still gossiped to, so it
	// can refute its death after a short partition.
	GossipToTheDeadTime time.Duration
	// RetransmitMult sets how often each membership broadcast is sent:
	// RetransmitMult * ceil(log10(N+1)) times per node that (re)broadcasts it.
	RetransmitMult int
	// DeltaRetransmitMult is RetransmitMult for instance deltas. It is higher
	// because a delta that misses a node waits for the next push/pull: in a
	// 3-node cluster each send goes to one of two random peers, so a node
	// misses a delta with probability about 2·4^-DeltaRetransmitMult (0.8% at
	// 4, 0.003% at 8), at the cost of proportionally more delta packets.
	DeltaRetransmitMult int

	// PushPullInterval is the time between full state exchanges over TCP with
	// one random peer (anti-entropy: repairs lost deltas, carries large lists).
	// Must be positive: without it a lost delta is never repaired.
	PushPullInterval time.Duration
	// TCPTimeout bounds dialling and each read or write of a TCP exchange
	// (joins, push/pull, TCP fallback probes). Shutdown may wait this long for
	// a join attempt in flight.
	TCPTimeout time.Duration
	// UDPBufferSize is the largest UDP packet sent, in bytes. One instance
	// delta must fit in it (see SetInstances). Keep it under the path MTU.
	UDPBufferSize int

	// JoinBackoffMin is the first wait between join attempts.
	JoinBackoffMin time.Duration
	// JoinBackoffMax caps the doubling wait between join attempts; it is also
	// how often a joined node checks whether it is alone again.
	JoinBackoffMax time.Duration

	// DeadRetention is how long a dead or departed member stays in Snapshot
	// (with Alive=false, and without its instances) so status can show it.
	// It is checked once a second.
	DeadRetention time.Duration

	// DecisionsFile, when set, is where this node keeps the decisions it
	// knows (see Cluster.Decide) across restarts: it writes the whole set,
	// with the certificates of their authors, at most once a second when it
	// changed and on Leave and Shutdown (to a temporary file renamed over
	// this one), and loads it at Start, verifying every decision again. A
	// missing or unreadable file is logged and the node starts without
	// decisions. Empty: decisions live in memory only. Default: "".
	DecisionsFile string

	// Logger receives this package's logs, and memberlist's at debug level.
	// nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns Shoal's LAN profile. It is tuned so that a node that
// dies without leaving (SIGKILL, power loss) is declared dead by its peers in
// about 2–3 s in a small cluster, while still tolerating a lost packet or a
// scheduling hiccup of a few hundred milliseconds.
//
// Expected time from death to "dead" (memberlist SWIM with Lifeguard):
//
//	first failed probe   ≈ 0.5–1 × ProbeInterval (someone probes the node about once per interval)
//	  + probe round      = 1 × ProbeInterval (direct, then indirect and TCP probes)
//	  + suspicion        = SuspicionMult × max(1, log10 N) × ProbeInterval, once one
//	                       peer confirms (SuspicionMult−2 = 1 confirmation needed;
//	                       without it, up to SuspicionMaxTimeoutMult times longer)
//	  + dissemination    ≈ a few GossipIntervals for the dead message to reach everyone
//
// With ProbeInterval 500ms, SuspicionMult 3: N=3 → 0.25–0.5 + 0.5 + 1.5 ≈ 2.3–2.6 s;
// N=100 → 0.25–0.5 + 0.5 + 3 + ~0.3 ≈ 4–4.5 s. A graceful Leave is seen within
// a few GossipIntervals (≈ 0.1–0.3 s).
//
// The encryption key is not set: add one (ParseKey) or set AllowPlaintext.
func DefaultConfig() Config {
	hostname, _ := os.Hostname()
	return Config{
		NodeName: hostname,
		BindAddr: "0.0.0.0",
		BindPort: 7946,

		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		IndirectChecks:          3,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 4, // worst case without confirmations: 6 s for N ≤ 10

		GossipInterval:      100 * time.Millisecond,
		GossipNodes:         3,
		GossipToTheDeadTime: 30 * time.Second,
		RetransmitMult:      4,
		DeltaRetransmitMult: 8,

		PushPullInterval: 10 * time.Second,
		TCPTimeout:       5 * time.Second,
		UDPBufferSize:    1400,

		JoinBackoffMin: 200 * time.Millisecond,
		JoinBackoffMax: 5 * time.Second,
		DeadRetention:  time.Minute,

		Logger: slog.Default(),
	}
}

// FastConfig trades robustness for speed: death is declared in about 1 s for
// N=3 (0.1–0.2 + 0.2 + 0.6 s) and 1.5–2 s for N=100. Use it on a quiet,
// single-switch LAN or in tests; a node paused for more than ~200 ms (GC, CPU
// starvation, VM steal) risks being suspected and must refute.
func FastConfig() Config {
	c := DefaultConfig()
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 5 * time.Second
	c.TCPTimeout = 2 * time.Second
	return c
}

// SafeConfig is memberlist's own LAN profile: death is declared in about 5–6 s
// for N=3 (0.5–1 + 1 + 4 s) and 9–10 s for N=100, and false suspicion needs a
// stall of over a second. Use it on busy or virtualised hosts where
// DefaultConfig produces "suspect" flapping.
func SafeConfig() Config {
	c := DefaultConfig()
	c.ProbeInterval = time.Second
	c.ProbeTimeout = 500 * time.Millisecond
	c.SuspicionMult = 4
	c.SuspicionMaxTimeoutMult = 6
	c.GossipInterval = 200 * time.Millisecond
	c.PushPullInterval = 30 * time.Second
	c.TCPTimeout = 10 * time.Second
	return c
}

// ParseKey decodes a base64 gossip key (as made by `head -c 32 /dev/urandom | base64`)
// and checks that it is 16, 24 or 32 bytes long.
func ParseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrBadKey, err)
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return key, nil
}

func checkKey(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("%w: got %d bytes", ErrBadKey, len(key))
}

// Validate reports every invalid field at once. Start calls it.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}

	if c.NodeName == "" || len(c.NodeName) > maxNameLen {
		bad("NodeName", "must be 1 to %d bytes, got %q", maxNameLen, c.NodeName)
	}
	if net.ParseIP(c.BindAddr) == nil {
		bad("BindAddr", "%q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		bad("AdvertiseAddr", "%q is not an IP address", c.AdvertiseAddr)
	}
	for _, f := range []struct {
		name string
		port int
	}{{"BindPort", c.BindPort}, {"AdvertisePort", c.AdvertisePort}} {
		if f.port < 0 || f.port > 65535 {
			bad(f.name, "%d is out of range 0-65535", f.port)
		}
	}
	for _, seed := range c.Seeds {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			bad("Seeds", "%q is not host:port: %v", seed, err)
		}
	}

	if len(c.SecretKeys) == 0 && !c.AllowPlaintext {
		errs = append(errs, ErrNoKey)
	}
	for i, key := range c.SecretKeys {
		if err := checkKey(key); err != nil {
			errs = append(errs, fmt.Errorf("SecretKeys[%d]: %w", i, err))
		}
	}

	switch {
	case c.Identity == nil:
		bad("Identity", "a node certificate and key are required (shoal ca issue)")
	case c.Identity.Name != c.NodeName:
		bad("Identity", "the certificate names %q, but this node is %q", c.Identity.Name, c.NodeName)
	}
	if c.Verifier == nil {
		bad("Verifier", "the cluster CA certificate is required")
	}
	if err := checkMetaSize(nodeMeta{Epoch: -1 << 63, Seq: 1 << 63, GossipAddr: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", Meta: c.Meta}); err != nil {
		errs = append(errs, fmt.Errorf("Meta: %w", err))
	}
	if err := checkMeta(c.NodeName, c.Meta); err != nil {
		errs = append(errs, fmt.Errorf("Meta: %w", err))
	}

	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval}, {"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval}, {"PushPullInterval", c.PushPullInterval},
		{"TCPTimeout", c.TCPTimeout}, {"JoinBackoffMin", c.JoinBackoffMin},
	} {
		if f.d <= 0 {
			bad(f.name, "must be positive, got %v", f.d)
		}
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		bad("ProbeTimeout", "%v must be below ProbeInterval %v", c.ProbeTimeout, c.ProbeInterval)
	}
	if c.JoinBackoffMax < c.JoinBackoffMin {
		bad("JoinBackoffMax", "%v is below JoinBackoffMin %v", c.JoinBackoffMax, c.JoinBackoffMin)
	}
	if c.DeadRetention < 0 || c.GossipToTheDeadTime < 0 {
		bad("DeadRetention/GossipToTheDeadTime", "must not be negative")
	}
	for _, f := range []struct {
		name string
		n    int
	}{
		{"SuspicionMult", c.SuspicionMult}, {"SuspicionMaxTimeoutMult", c.SuspicionMaxTimeoutMult},
		{"GossipNodes", c.GossipNodes}, {"RetransmitMult", c.RetransmitMult},
		{"DeltaRetransmitMult", c.DeltaRetransmitMult},
	} {
		if f.n < 1 {
			bad(f.name, "must be at least 1, got %d", f.n)
		}
	}
	if c.IndirectChecks < 0 {
		bad("IndirectChecks", "must not be negative, got %d", c.IndirectChecks)
	}
	if c.UDPBufferSize < minUDPBufferSize || c.UDPBufferSize > maxUDPBufferSize {
		bad("UDPBufferSize", "must be %d to %d bytes, got %d", minUDPBufferSize, maxUDPBufferSize, c.UDPBufferSize)
	}
	return errors.Join(errs...)
}

// maxDeltaBytes is the largest encoded instance delta that always fits one
// gossip packet: UDPBufferSize less memberlist's compound header (2) and
// per-message (2) overhead, the user message tag (1) and the worst-case
// encryption overhead (45), rounded up to leave room for a label.
func (c Config) maxDeltaBytes() int { return c.UDPBufferSize - 64 }

// UDPBufferSize bounds: the minimum keeps maxDeltaBytes large enough for real
// instances; the maximum is the largest UDP payload.
const (
	minUDPBufferSize = 576
	maxUDPBufferSize = 65507
)

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// memberlistConfig maps a validated Config onto memberlist's. Everything not
// set here keeps memberlist.DefaultLANConfig's value.
func (c Config) memberlistConfig() (*memberlist.Config, error) {
	m := memberlist.DefaultLANConfig()
	m.Name = c.NodeName
	m.BindAddr = c.BindAddr
	m.BindPort = c.BindPort
	m.AdvertiseAddr = c.AdvertiseAddr
	m.AdvertisePort = c.AdvertisePort
	if m.AdvertisePort == 0 {
		m.AdvertisePort = c.BindPort // memberlist fills it in itself when BindPort is 0
	}

	m.ProbeInterval = c.ProbeInterval
	m.ProbeTimeout = c.ProbeTimeout
	m.IndirectChecks = c.IndirectChecks
	m.SuspicionMult = c.SuspicionMult
	m.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	m.GossipInterval = c.GossipInterval
	m.GossipNodes = c.GossipNodes
	m.GossipToTheDeadTime = c.GossipToTheDeadTime
	m.RetransmitMult = c.RetransmitMult
	m.PushPullInterval = c.PushPullInterval
	m.TCPTimeout = c.TCPTimeout
	m.UDPBufferSize = c.UDPBufferSize
	// Receivers never decompress (guardTransport drops compressed messages),
	// so never send compressed.
	m.EnableCompression = false

	if len(c.SecretKeys) > 0 {
		keyring, err := memberlist.NewKeyring(c.SecretKeys, c.SecretKeys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip: keyring: %w", err)
		}
		m.Keyring = keyring
		m.GossipVerifyIncoming = true
		m.GossipVerifyOutgoing = true
	}

	m.LogOutput = nil
	m.Logger = log.New(memberlistLog{c.logger()}, "", 0)
	return m, nil
}

// memberlistLog turns memberlist's "[LEVEL] memberlist: text" lines into slog
// debug records: memberlist is chatty about routine events (every stream,
// every refuted suspicion), and what matters to an operator is logged by this
// package at the right level.
type memberlistLog struct{ log *slog.Logger }

var _ io.Writer = memberlistLog{}

func (w memberlistLog) Write(p []byte) (int, error) {
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			level, line = line[1:end], strings.TrimSpace(line[end+1:])
		}
	}
	w.log.Debug(line, "memberlist_level", level)
	return len(p), nil
}
