package gossip

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoalhq/shoal/identity"
)

// Errors about what other nodes send, wrapped with the reason. Callers branch
// on them with errors.Is.
var (
	// ErrNotOwner means a record, snapshot or metadata was not signed by the
	// node it is about: a forged or corrupted message, or one from a node
	// whose certificate the CA did not issue.
	ErrNotOwner = errors.New("gossip: not signed by the node it is about")
	// ErrUnknownCert means the signer's certificate has not arrived yet
	// (certificates travel in push/pull); the message is dropped or, for
	// metadata, held until it does.
	ErrUnknownCert = errors.New("gossip: signer's certificate not known yet")
	// ErrBadMeta means signed metadata declares something a node may not:
	// a kubelet-owned label that contradicts the node, or absurd capacity.
	ErrBadMeta = errors.New("gossip: invalid node metadata")
)

// Bounds on what a node may declare about itself. They are far above any
// machine (the largest have a few thousand cores and tens of TiB) and far
// below what would overflow the planner's sums over a few thousand nodes.
const (
	maxMilliCPU    = 1 << 16 * 1000 // 65,536 cores
	maxMemoryBytes = 1 << 48        // 256 TiB
	// maxInstancesPerNode is 100 times the kubelet's largest recommended maxPods.
	maxInstancesPerNode = 1 << 16
)

// trust checks what other nodes sealed. It caches the certificates that chain
// to the cluster CA, by fingerprint, so that each is verified once, and checks
// signatures against them. Safe for concurrent use: delegates verify outside
// Cluster.mu.
type trust struct {
	verifier *identity.Verifier
	self     *identity.Identity

	mu    sync.Mutex
	certs map[identity.Fingerprint]*peerCert
}

type peerCert struct {
	name     string
	pub      ed25519.PublicKey
	der      []byte
	notAfter time.Time
}

// maxCachedCerts bounds the cache (only CA-issued certificates enter it); it
// equals what one state message may carry so that all of them are forwarded.
const maxCachedCerts = maxStateCerts

func newTrust(v *identity.Verifier, self *identity.Identity, now time.Time) (*trust, error) {
	t := &trust{verifier: v, self: self, certs: map[identity.Fingerprint]*peerCert{}}
	if err := t.addCert(self.DER, now); err != nil {
		return nil, fmt.Errorf("gossip: this node's own certificate: %w", err)
	}
	return t, nil
}

// addCert verifies a certificate against the CA and caches it. A certificate
// already cached costs one map lookup.
func (t *trust) addCert(der []byte, now time.Time) error {
	fp := identity.FingerprintOf(der)
	t.mu.Lock()
	_, known := t.certs[fp]
	full := len(t.certs) >= maxCachedCerts
	t.mu.Unlock()
	if known {
		return nil
	}
	if full {
		return fmt.Errorf("gossip: %d certificates cached already", maxCachedCerts)
	}
	name := identity.NameOf(der)
	c, err := t.verifier.Verify(der, name, now)
	if err != nil {
		return err
	}
	cert := &peerCert{name: name, pub: c.PublicKey.(ed25519.PublicKey), der: slices.Clone(der), notAfter: c.NotAfter}
	t.mu.Lock()
	t.certs[fp] = cert
	t.mu.Unlock()
	return nil
}

// verify checks that s was signed by a cached certificate that names name.
func (t *trust) verify(name string, s sealed, now time.Time) error {
	t.mu.Lock()
	cert := t.certs[s.fingerprint()]
	t.mu.Unlock()
	switch {
	case cert == nil:
		return fmt.Errorf("%w: %s for %q", ErrUnknownCert, s.fingerprint().String()[:16], name)
	case cert.name != name:
		return fmt.Errorf("%w: %q signed with the certificate of %q", ErrNotOwner, name, cert.name)
	case now.After(cert.notAfter):
		return fmt.Errorf("%w: the certificate of %q expired at %s", ErrNotOwner, name, cert.notAfter.Format(time.RFC3339))
	case !ed25519.Verify(cert.pub, sigInput(name, s.body()), s.sig()):
		return fmt.Errorf("%w: bad signature for %q", ErrNotOwner, name)
	}
	return nil
}

// has reports whether the certificate with fingerprint fp is cached.
func (t *trust) has(fp identity.Fingerprint) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.certs[fp] != nil
}

// der returns the cached certificates with the given fingerprints, in the
// order given, skipping those not cached.
func (t *trust) der(fps []identity.Fingerprint) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out [][]byte
	for _, fp := range fps {
		if c := t.certs[fp]; c != nil {
			out = append(out, c.der)
		}
	}
	return out
}

// all returns every cached certificate, this node's first, for push/pull.
func (t *trust) all() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := [][]byte{t.self.DER}
	self := t.self.Fingerprint()
	for _, fp := range slices.SortedFunc(maps.Keys(t.certs), func(a, b identity.Fingerprint) int { return strings.Compare(string(a[:]), string(b[:])) }) {
		if fp != self {
			out = append(out, t.certs[fp].der)
		}
	}
	return out
}

// prune forgets the certificates of nodes that keep reports false about
// (gone from the member list and the store) and those that expired.
func (t *trust) prune(keep func(name string) bool, now time.Time) {
	self := t.self.Fingerprint()
	t.mu.Lock()
	defer t.mu.Unlock()
	for fp, c := range t.certs {
		if fp != self && (!keep(c.name) || now.After(c.notAfter)) {
			delete(t.certs, fp)
		}
	}
}

// checkMeta rejects what a node may not declare about itself (rule 9
// of docs/design.md): the labels that kubelet would own must describe the node
// itself, capacity must be sane, and allowed host paths clean and absolute.
func checkMeta(name string, m Meta) error {
	if h, ok := m.Labels["kubernetes.io/hostname"]; ok && h != name {
		return fmt.Errorf("%w: label kubernetes.io/hostname=%q on node %q (it must be the node name)", ErrBadMeta, h, name)
	}
	for _, key := range []string{"os", "arch"} {
		ga, beta := m.Labels["kubernetes.io/"+key], m.Labels["beta.kubernetes.io/"+key]
		if ga != "" && beta != "" && ga != beta {
			return fmt.Errorf("%w: labels kubernetes.io/%s=%q and beta.kubernetes.io/%s=%q disagree", ErrBadMeta, key, ga, key, beta)
		}
	}
	if m.MilliCPU < 0 || m.MilliCPU > maxMilliCPU {
		return fmt.Errorf("%w: allocatable CPU %dm outside 0 to %dm", ErrBadMeta, m.MilliCPU, int64(maxMilliCPU))
	}
	if m.MemoryBytes < 0 || m.MemoryBytes > maxMemoryBytes {
		return fmt.Errorf("%w: allocatable memory %d bytes outside 0 to %d", ErrBadMeta, m.MemoryBytes, int64(maxMemoryBytes))
	}
	if m.MaxInstances < 0 || m.MaxInstances > maxInstancesPerNode {
		return fmt.Errorf("%w: max instances %d outside 0 to %d", ErrBadMeta, m.MaxInstances, maxInstancesPerNode)
	}
	for _, dir := range m.HostPaths {
		if !path.IsAbs(dir) || path.Clean(dir) != dir {
			return fmt.Errorf("%w: allowed host path %q is not absolute and clean", ErrBadMeta, dir)
		}
	}
	if slices.Contains(m.Capabilities, "") {
		return fmt.Errorf("%w: empty allowed capability", ErrBadMeta)
	}
	if m.PodSubnet != "" {
		if p, err := netip.ParsePrefix(m.PodSubnet); err != nil || p.Masked() != p {
			return fmt.Errorf("%w: pod subnet %q is not a network prefix", ErrBadMeta, m.PodSubnet)
		}
	}
	if m.PodSubnetSince < 0 {
		return fmt.Errorf("%w: pod subnet claimed at %d, before 1970", ErrBadMeta, m.PodSubnetSince)
	}
	return nil
}
