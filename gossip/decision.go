package gossip

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shoalhq/shoal/identity"
)

// Decision is a statement one node made about the cluster, signed by it and relayed by every node verbatim.
//
// Every node keeps, for each Key, the decision with the greatest (Time,
// Author): a later Time wins, and of two made in the same millisecond the one
// by the greater Author name (then the greater sealed bytes, so that even an
// author that signs two bodies in one millisecond cannot split the cluster).
// Whatever order decisions arrive in, every node converges on the same one.
type Decision struct {
	Key    string    // what it is about; 1..256 bytes
	Author string    // the node that made it
	Time   time.Time // the author's clock when made (millisecond precision on the wire)
	Body   []byte    // opaque to gossip; at most MaxDecisionBody (1024) bytes
}

// Bounds on one decision. Decide refuses, and decoding drops, anything larger.
const (
	// MaxDecisionKey is the longest Key, in bytes.
	MaxDecisionKey = 256
	// MaxDecisionBody is the longest Body, in bytes.
	MaxDecisionBody = 1024
)

// Bounds on the decisions one node keeps.
const (
	// maxDecisionsPerAuthor bounds the decisions kept by one author: beyond
	// it the author's oldest (by Time) is dropped, so one node flooding
	// decisions cannot push out another's.
	maxDecisionsPerAuthor = 1024
	// maxDecisions bounds all decisions kept: beyond it the oldest is dropped.
	maxDecisions = 8192
	// maxDecisionSkew is how far ahead of the receiver's clock a decision
	// may be dated. Without it a decision dated in the far future would win
	// every merge for its key forever.
	maxDecisionSkew = 5 * time.Minute
	// maxDecisionLen is the largest sealed decision: kind, key, author,
	// time, body and seal, with their length prefixes.
	maxDecisionLen = 1 + 2 + MaxDecisionKey + 2 + maxNameLen + binary.MaxVarintLen64 + 2 + MaxDecisionBody + sealLen
	// maxStateDecisionBytes bounds the sealed decisions one push/pull
	// carries, newest first, so that together with instance state it stays
	// under the 8 MiB a stream message may have (guard.go). 8,192 decisions
	// of a few hundred bytes each fit; larger ones beyond it travel in
	// broadcasts only.
	maxStateDecisionBytes = 4 << 20
)

// ErrInvalidDecision is returned (wrapped, with the reason) by Decide for a
// key or body it cannot publish: empty or beyond MaxDecisionKey or
// MaxDecisionBody.
var ErrInvalidDecision = errors.New("gossip: invalid decision")

// errFutureDecision means a decision is dated beyond maxDecisionSkew ahead of
// this node's clock.
var errFutureDecision = errors.New("gossip: decision dated in the future")

// sealedDecision is a decision with the sealed bytes its author signed, which
// relays forward. Body is the tail of the sealed body (see
// encodeDecisionBody), so a decision costs its sealed size once.
type sealedDecision struct {
	Decision
	seal sealed
}

// sealDecision signs d with id, the identity of its author.
func sealDecision(id *identity.Identity, d Decision) sealedDecision {
	s := sealed(seal(id, d.Author, encodeDecisionBody(d)))
	body := s.body()
	d.Body = body[len(body)-len(d.Body):]
	return sealedDecision{Decision: d, seal: s}
}

// own copies d out of the message buffer it was decoded from.
func (d sealedDecision) own() sealedDecision {
	n := len(d.Body)
	d.seal = slices.Clone(d.seal)
	body := d.seal.body()
	d.Body = body[len(body)-n : len(body) : len(body)]
	return d
}

// wins reports whether a replaces b as the decision of their key: a later
// Time, then the greater Author, then the greater sealed bytes. An identical
// decision does not win.
func (a sealedDecision) wins(b sealedDecision) bool {
	return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Author, b.Author), bytes.Compare(a.seal, b.seal)) > 0
}

// compareAge orders decisions oldest first, for eviction: by Time, then
// Author and Key, so every node evicts the same one.
func compareAge(a, b Decision) int {
	return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Author, b.Author), cmp.Compare(a.Key, b.Key))
}

// decisionStore is the set of decisions: the winning one of each key, within
// maxDecisionsPerAuthor and maxDecisions. It is pure (no I/O, no clock, no
// signatures: the Cluster verifies before adding) and not safe for concurrent
// use; Cluster guards it with its mutex.
type decisionStore struct {
	byKey    map[string]sealedDecision
	byAuthor map[string]map[string]bool // each author's keys
	shown    []Decision                 // sorted by key, shared by views; nil when changed
}

func newDecisionStore() *decisionStore {
	return &decisionStore{byKey: map[string]sealedDecision{}, byAuthor: map[string]map[string]bool{}}
}

// wouldChange reports whether add(d) might change the store: whether d wins
// over the decision kept for its key. Callers check it before verifying d,
// so that the copies every node relays of a decision cost a map lookup.
func (s *decisionStore) wouldChange(d sealedDecision) bool {
	cur, ok := s.byKey[d.Key]
	return !ok || d.wins(cur)
}

// add keeps d if it wins over the decision kept for its key, making room by
// the bounds, and reports whether it did. d must be verified and own its
// bytes.
func (s *decisionStore) add(d sealedDecision) bool {
	cur, replacing := s.byKey[d.Key]
	if replacing && !d.wins(cur) {
		return false
	}
	if !replacing || cur.Author != d.Author {
		if len(s.byAuthor[d.Author]) >= maxDecisionsPerAuthor && !s.evictOlder(d, maps.Keys(s.byAuthor[d.Author])) {
			return false // d is its author's oldest
		}
		if !replacing && len(s.byKey) >= maxDecisions && !s.evictOlder(d, maps.Keys(s.byKey)) {
			return false // d is the oldest of all
		}
	}
	if replacing {
		s.remove(cur.Decision)
	}
	s.byKey[d.Key] = d
	if s.byAuthor[d.Author] == nil {
		s.byAuthor[d.Author] = map[string]bool{}
	}
	s.byAuthor[d.Author][d.Key] = true
	s.shown = nil
	return true
}

// evictOlder removes the oldest decision of keys if it is older than d, and
// reports whether it did.
func (s *decisionStore) evictOlder(d sealedDecision, keys iter.Seq[string]) bool {
	var oldest Decision
	found := false
	for k := range keys {
		if c := s.byKey[k].Decision; !found || compareAge(c, oldest) < 0 {
			oldest, found = c, true
		}
	}
	if !found || compareAge(oldest, d.Decision) >= 0 {
		return false
	}
	s.remove(oldest)
	return true
}

func (s *decisionStore) remove(d Decision) {
	delete(s.byKey, d.Key)
	delete(s.byAuthor[d.Author], d.Key)
	if len(s.byAuthor[d.Author]) == 0 {
		delete(s.byAuthor, d.Author)
	}
	s.shown = nil
}

// get returns the decision kept for key.
func (s *decisionStore) get(key string) (sealedDecision, bool) {
	d, ok := s.byKey[key]
	return d, ok
}

// hasAuthor reports whether any decision kept is by name.
func (s *decisionStore) hasAuthor(name string) bool { return s.byAuthor[name] != nil }

// retain drops the decisions keep reports false for and reports whether it
// dropped any.
func (s *decisionStore) retain(keep func(sealedDecision) bool) bool {
	changed := false
	for _, d := range s.byKey {
		if !keep(d) {
			s.remove(d.Decision)
			changed = true
		}
	}
	return changed
}

// newestFirst returns every decision kept, newest first (by compareAge), for
// push/pull and the decisions file.
func (s *decisionStore) newestFirst() []sealedDecision {
	out := slices.Collect(maps.Values(s.byKey))
	slices.SortFunc(out, func(a, b sealedDecision) int { return compareAge(b.Decision, a.Decision) })
	return out
}

// view returns the decisions sorted by key, built once per change and shared
// by every view until the next.
func (s *decisionStore) view() []Decision {
	if s.shown == nil && len(s.byKey) > 0 {
		s.shown = make([]Decision, 0, len(s.byKey))
		for _, d := range s.byKey {
			s.shown = append(s.shown, d.Decision)
		}
		slices.SortFunc(s.shown, func(a, b Decision) int { return cmp.Compare(a.Key, b.Key) })
	}
	return s.shown
}

// Decide seals a decision by this node with the given key and body, timed now (the
// cluster's clock), stores it, writes it to Config.DecisionsFile before it returns, and
// spreads it. It returns the Decision as stored. Errors for an empty/oversized key or body.
//
// "Now" is this node's clock in whole milliseconds, but never before the
// decision kept for key: if that one is dated at or after now (another
// node's clock runs ahead), the new one is dated a millisecond after it, so
// that a decision made after seeing another always replaces it. It spreads
// in gossip broadcasts, and to every node, the author's death notwithstanding,
// in push/pull (Config.PushPullInterval).
func (c *Cluster) Decide(key string, body []byte) (Decision, error) {
	switch {
	case key == "" || len(key) > MaxDecisionKey:
		return Decision{}, fmt.Errorf("%w: key of %d bytes, want 1 to %d", ErrInvalidDecision, len(key), MaxDecisionKey)
	case len(body) == 0 || len(body) > MaxDecisionBody:
		return Decision{}, fmt.Errorf("%w: %q: body of %d bytes, want 1 to %d", ErrInvalidDecision, key, len(body), MaxDecisionBody)
	}
	c.mu.Lock()
	ms := time.Now().UnixMilli()
	if cur, ok := c.decisions.get(key); ok && cur.Time.UnixMilli() >= ms {
		ms = cur.Time.UnixMilli() + 1
	}
	d := sealDecision(c.cfg.Identity, Decision{Key: key, Author: c.cfg.NodeName, Time: time.UnixMilli(ms), Body: body})
	added := c.decisions.add(d)
	if added {
		c.queueDecisionLocked(d)
		c.decisionsChangedLocked()
	}
	c.mu.Unlock()
	if !added {
		// Only when every kept decision is dated after now (up to
		// maxDecisionSkew ahead) and the store is full.
		return Decision{}, fmt.Errorf("%w: %q is older than every decision kept", ErrInvalidDecision, key)
	}
	// This node's own decisions are on disk before Decide returns, not at the
	// next save: one made just before a kill -9 (a commit status sent, say)
	// would otherwise be lost with the broadcast still queued, and made again.
	c.saveDecisionsLogged()
	c.notify()
	return d.Decision, nil
}

// queueDecisionLocked queues a decision for gossip, replacing any queued one
// for the same key. A decision too large for one packet (over about
// Config.UDPBufferSize - 64 bytes sealed) is left to push/pull.
func (c *Cluster) queueDecisionLocked(d sealedDecision) {
	if len(d.seal) > c.cfg.maxDeltaBytes() {
		return
	}
	// Node names are never empty, so this name never equals a delta's.
	c.queueLocked(&broadcast{name: "\x00decision\x00" + d.Key, msg: d.seal})
}

// checkDecision verifies that d's author signed it and that it is not dated
// beyond maxDecisionSkew after now.
func (c *Cluster) checkDecision(d sealedDecision, now time.Time) error {
	if ahead := d.Time.Sub(now); ahead > maxDecisionSkew {
		return fmt.Errorf("%w: %q by %q is dated %s, %v ahead of this node's clock (limit %v)",
			errFutureDecision, d.Key, d.Author, d.Time.UTC().Format(time.RFC3339Nano), ahead.Round(time.Second), maxDecisionSkew)
	}
	return c.trust.verify(d.Author, d.seal, now)
}

// mergeDecisions verifies and adds decisions received or loaded, and reports
// whether the set changed. When queue is set, each decision that was news is
// re-broadcast: every node relays every decision, so it reaches everyone even
// if its author dies. Decisions that would not win are dropped before their
// signature is checked.
func (c *Cluster) mergeDecisions(ds []sealedDecision, queue bool, now time.Time) bool {
	c.mu.Lock()
	ds = slices.DeleteFunc(ds, func(d sealedDecision) bool { return !c.decisions.wouldChange(d) })
	c.mu.Unlock()
	ds = slices.DeleteFunc(ds, func(d sealedDecision) bool {
		if err := c.checkDecision(d, now); err != nil {
			c.reject(fmt.Sprintf("decision %q", d.Key), err)
			return true
		}
		return false
	})
	if len(ds) == 0 {
		return false
	}
	changed := false
	c.mu.Lock()
	for _, d := range ds {
		d = d.own()
		if c.decisions.add(d) {
			changed = true
			if queue {
				c.queueDecisionLocked(d)
			}
		}
	}
	if changed {
		c.decisionsChangedLocked()
	}
	c.mu.Unlock()
	return changed
}

// exportDecisions returns the sealed decisions for a push/pull, newest first
// up to maxStateDecisionBytes.
func (c *Cluster) exportDecisions() [][]byte {
	c.mu.Lock()
	ds := c.decisions.newestFirst()
	c.mu.Unlock()
	var out [][]byte
	size := 0
	for _, d := range ds {
		if size += len(d.seal); size > maxStateDecisionBytes {
			break
		}
		out = append(out, d.seal)
	}
	return out
}

// decisionsFileMagic starts a decisions file; the rest is a state message
// (messages.go) holding the authors' certificates and the sealed decisions.
const decisionsFileMagic = "shoal decisions v1\n"

// maxDecisionsFile bounds what loadDecisions reads: every decision at its
// largest and a certificate for each author, with room to spare.
const maxDecisionsFile = len(decisionsFileMagic) + maxDecisions*(maxDecisionLen+4) + maxStateCerts*(maxCertLen+4) + 64

// loadDecisions loads Config.DecisionsFile, verifying every decision again
// (certificates against the CA, signatures, dates, bounds) and dropping what
// fails. A missing or corrupt file is logged, not fatal.
func (c *Cluster) loadDecisions(now time.Time) {
	path := c.cfg.DecisionsFile
	if path == "" {
		return
	}
	msg, err := readDecisionsFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.log.Info("gossip: no decisions file yet, starting without decisions", "path", path)
		return
	case err != nil:
		c.log.Warn("gossip: ignoring the decisions file, starting without decisions", "path", path, "err", err)
		return
	}
	for _, der := range msg.Certs {
		if err := c.trust.addCert(der, now); err != nil {
			c.log.Warn("gossip: decisions file: dropping a certificate", "path", path, "err", err)
		}
	}
	c.mergeDecisions(msg.Decisions, false, now)
	c.mu.Lock()
	kept := len(c.decisions.byKey)
	c.savedVersion = c.decisionsVersion // what is kept is what the file says, less what failed
	c.mu.Unlock()
	c.log.Info("gossip: loaded decisions", "path", path, "kept", kept, "in file", len(msg.Decisions))
}

// readDecisionsFile reads and decodes a decisions file; it must hold only
// certificates and decisions.
func readDecisionsFile(path string) (stateMsg, error) {
	f, err := os.Open(path)
	if err != nil {
		return stateMsg{}, err
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, int64(maxDecisionsFile)+1))
	switch {
	case err != nil:
		return stateMsg{}, err
	case len(buf) > maxDecisionsFile:
		return stateMsg{}, fmt.Errorf("larger than %d bytes", maxDecisionsFile)
	case !bytes.HasPrefix(buf, []byte(decisionsFileMagic)):
		return stateMsg{}, errors.New("not a decisions file (bad header)")
	}
	msg, err := decodeState(buf[len(decisionsFileMagic):])
	if err == nil && len(msg.Deltas)+len(msg.States) > 0 {
		err = fmt.Errorf("%w: instance records in a decisions file", ErrMalformed)
	}
	return msg, err
}

// saveDecisionsLogged saves the decisions file, logging a failure: the
// decisions stay in memory and the next save tries again.
func (c *Cluster) saveDecisionsLogged() {
	if err := c.saveDecisions(); err != nil {
		c.log.Warn("gossip: saving decisions", "path", c.cfg.DecisionsFile, "err", err)
	}
}

// saveDecisions writes every decision and its author's certificate to
// Config.DecisionsFile if they changed since the last write.
func (c *Cluster) saveDecisions() error {
	if c.cfg.DecisionsFile == "" {
		return nil
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	version := c.decisionsVersion
	ds := c.decisions.newestFirst()
	c.mu.Unlock()
	if version == c.savedVersion {
		return nil
	}
	blobs := make([][]byte, len(ds))
	var fps []identity.Fingerprint
	for i, d := range ds {
		blobs[i] = d.seal
		if fp := d.seal.fingerprint(); !slices.Contains(fps, fp) {
			fps = append(fps, fp)
		}
	}
	data := append([]byte(decisionsFileMagic), encodeState(c.trust.der(fps), blobs)...)
	if err := writeFileAtomic(c.cfg.DecisionsFile, data); err != nil {
		return err
	}
	c.savedVersion = version
	return nil
}

// writeFileAtomic replaces path with data: a crash leaves either the old
// file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
