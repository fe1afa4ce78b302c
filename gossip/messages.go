package gossip

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalhq/shoal/identity"
)

// Wire format. Everything is a compact binary encoding: unsigned integers are
// uvarints, signed ones zig-zag varints, strings a uvarint length then bytes.
// Every decoder checks each length and count against the bytes left before
// allocating, so a hostile or corrupt message costs at most a small constant
// times its own size and never panics.
//
// What a node says about itself is sealed: the body is followed by the
// fingerprint of the node's certificate and its Ed25519 signature over
// sigContext, the node's name and the body (see seal). Relays forward sealed
// bytes unchanged, so whoever relays it, a record is verified against its
// owner's certificate.
//
//	sealed   = body fingerprint:[32]byte signature:[64]byte
//	delta    = sealed(kindDelta owner:string epoch:varint record)
//	snapshot = sealed(kindSnapshot owner:string epoch:varint floor:uvarint count:uvarint {record})  (no tombstones)
//	state    = kindState count:uvarint {certificate:string} count:uvarint {delta|snapshot|decision:string}
//	record   = id:string counter:uvarint flags:byte [namespace workload specHash addr:string ports]  (fields only when not deleted)
//	ports    = count:uvarint { name:string port:varint protocol:string }
//	decision = sealed(kindDecision key:string author:string time:varint body:string)  (time in unix milliseconds, signed by author)
//	meta     = sealed(kindMeta epoch:varint seq:uvarint milliCPU:varint memoryBytes:varint revision apiAddr dnsAddr gossipAddr:string
//	           count:uvarint { key:string value:string }  (labels sorted by key)
//	           maxInstances:uvarint allows:uvarint count:uvarint {hostPath:string} count:uvarint {capability:string})

// ErrMalformed is returned (wrapped) when a message cannot be decoded.
var ErrMalformed = errors.New("gossip: malformed message")

// ErrMetaTooLarge means the encoded node metadata exceeds memberlist's
// 512-byte limit; shorten or drop labels, allowed host paths or capabilities.
var ErrMetaTooLarge = fmt.Errorf("gossip: node metadata larger than %d bytes", memberlist.MetaMaxSize)

// The first byte of every message names its kind, and is signed with it, so
// a signature over one kind is never valid for another.
const (
	kindDelta    byte = 1
	kindState    byte = 2
	kindSnapshot byte = 3
	kindMeta     byte = 4
	kindDecision byte = 5

	// sigContext separates Shoal's gossip signatures from anything else
	// the node key signs (such as TLS handshakes).
	sigContext = "shoal gossip v2"
	sealLen    = sha256.Size + ed25519.SignatureSize

	// maxStringLen bounds every decoded string. It is at least anything the
	// encoders accept (a delta fits one UDP packet, meta 512 bytes), so it
	// only stops garbage.
	maxStringLen = maxUDPBufferSize
	// maxCertLen bounds one certificate in a state message; Shoal's are
	// about 400 bytes.
	maxCertLen = 4096
	// maxStateCerts and maxStateItems bound the certificates and sealed
	// records one push/pull may carry, which bounds the signature checks it
	// costs (about 50 µs each): enough for a few hundred nodes.
	// Besides, a state may carry maxDecisions decisions (decision.go), of
	// at most maxDecisionLen bytes each.
	maxStateCerts = 1024
	maxStateItems = 8192

	flagReady   = 1 << 0
	flagRunning = 1 << 1
	flagDeleted = 1 << 2

	// minRecordLen is the smallest encoded record (empty id, counter, flags),
	// used to bound counts before allocating.
	minRecordLen = 3
	// minLiveRecordLen is the smallest encoded record that is not a tombstone
	// (id, counter, flags, four strings, a port count): what a snapshot holds.
	minLiveRecordLen = 8
	// maxStateRecords bounds the records of all snapshots in one push/pull
	// together. A decoded record takes about 170 bytes, so this keeps a state
	// message's cost a small multiple of the largest stream message (8 MiB):
	// 2^18 records are about 45 MB. It is more than a cluster at the default
	// revision limits (100,000 replicas) runs, surge included.
	maxStateRecords = 1 << 18
	// minPortLen is the smallest encoded port.
	minPortLen = 3
	// maxPorts bounds an instance's ports. A decoded port takes about 40
	// bytes for as few as 7 encoded, so without a bound a packet of ports
	// would cost 6 times its size.
	maxPorts = 64
)

// sealed is a sealed message as received: body, fingerprint and signature,
// which relays forward unchanged. nil for what this node has not sealed yet.
// It is one slice, not three, so that a decoded record stays small.
type sealed []byte

func (s sealed) body() []byte { return s[:len(s)-sealLen] }
func (s sealed) sig() []byte  { return s[len(s)-ed25519.SignatureSize:] }
func (s sealed) fingerprint() identity.Fingerprint {
	return identity.Fingerprint(s[len(s)-sealLen : len(s)-ed25519.SignatureSize])
}

// delta is one change to one instance of one owner, broadcast by gossip.
type delta struct {
	Owner  string
	Epoch  int64
	Record record
	seal   sealed // zero for a delta this node made and has not sealed
}

// record is the latest known version of one instance. Deleted records
// (tombstones) carry only Info.ID.
type record struct {
	Counter uint64
	Deleted bool
	Info    InstanceInfo
	// signed is the sealed delta this record came from, which relays
	// forward; nil when the owner's snapshot (at or below the floor) covers it.
	signed []byte
}

// ownerState is one owner's snapshot of its own instances, as exchanged by
// push/pull. See store for what Floor means.
type ownerState struct {
	Owner   string
	Epoch   int64
	Floor   uint64
	Records []record
	seal    sealed
}

// nodeMeta is a node's metadata as it travels: Meta plus the run epoch, a
// sequence number that orders updates within a run, and the gossip address
// the node advertises (so that a replayed announcement cannot move it).
type nodeMeta struct {
	Epoch      int64
	Seq        uint64
	GossipAddr string
	Meta
}

// stateMsg is a decoded push/pull message.
type stateMsg struct {
	Certs     [][]byte
	Deltas    []delta
	States    []ownerState
	Decisions []sealedDecision
}

type encoder struct{ buf []byte }

func (e *encoder) byte(b byte)      { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) string(s string)  { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) bytes(b []byte)   { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) strings(s ...string) {
	for _, v := range s {
		e.string(v)
	}
}

func (e *encoder) record(r record) {
	e.string(r.Info.ID)
	e.uvarint(r.Counter)
	var flags byte
	if r.Deleted {
		e.byte(flagDeleted)
		return
	}
	if r.Info.Ready {
		flags |= flagReady
	}
	if r.Info.Running {
		flags |= flagRunning
	}
	e.byte(flags)
	e.strings(r.Info.Namespace, r.Info.Workload, r.Info.SpecHash, r.Info.Addr)
	e.uvarint(uint64(len(r.Info.Ports)))
	for _, p := range r.Info.Ports {
		e.string(p.Name)
		e.varint(int64(p.Port))
		e.string(p.Protocol)
	}
}

// seal appends id's certificate fingerprint and its signature over
// (sigContext, name, body) to body.
func seal(id *identity.Identity, name string, body []byte) []byte {
	fp := id.Fingerprint()
	sig := id.Sign(sigInput(name, body))
	out := make([]byte, 0, len(body)+sealLen)
	return append(append(append(out, body...), fp[:]...), sig...)
}

// sigInput is what a seal signs: the name is part of it so that a signature
// is bound to the node that the certificate names, whatever the body says.
func sigInput(name string, body []byte) []byte {
	e := encoder{buf: make([]byte, 0, len(sigContext)+len(name)+len(body)+4)}
	e.strings(sigContext, name)
	e.buf = append(e.buf, body...)
	return e.buf
}

func encodeDeltaBody(d delta) []byte {
	e := encoder{buf: make([]byte, 0, 128)}
	e.byte(kindDelta)
	e.string(d.Owner)
	e.varint(d.Epoch)
	e.record(d.Record)
	return e.buf
}

func encodeSnapshotBody(st ownerState) []byte {
	e := encoder{buf: make([]byte, 0, 64+100*len(st.Records))}
	e.byte(kindSnapshot)
	e.string(st.Owner)
	e.varint(st.Epoch)
	e.uvarint(st.Floor)
	e.uvarint(uint64(len(st.Records)))
	for _, r := range st.Records {
		e.record(r)
	}
	return e.buf
}

// encodeState encodes a push/pull message from certificates and sealed
// deltas and snapshots.
func encodeState(certs, blobs [][]byte) []byte {
	e := encoder{}
	e.byte(kindState)
	e.uvarint(uint64(len(certs)))
	for _, c := range certs {
		e.string(string(c))
	}
	e.uvarint(uint64(len(blobs)))
	for _, b := range blobs {
		e.string(string(b))
	}
	return e.buf
}

func encodeDecisionBody(d Decision) []byte {
	e := encoder{buf: make([]byte, 0, 32+len(d.Key)+len(d.Author)+len(d.Body))}
	e.byte(kindDecision)
	e.strings(d.Key, d.Author)
	e.varint(d.Time.UnixMilli())
	e.bytes(d.Body) // last, so that the decoded Body is the tail of the sealed body
	return e.buf
}

func encodeMetaBody(m nodeMeta) []byte {
	e := encoder{buf: make([]byte, 0, 256)}
	e.byte(kindMeta)
	e.varint(m.Epoch)
	e.uvarint(m.Seq)
	e.varint(m.MilliCPU)
	e.varint(m.MemoryBytes)
	e.strings(m.Revision, m.APIAddr, m.DNSAddr, m.GossipAddr)
	keys := slices.Sorted(maps.Keys(m.Labels))
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.strings(k, m.Labels[k])
	}
	e.uvarint(uint64(m.MaxInstances))
	e.uvarint(m.Allows)
	for _, list := range [][]string{m.HostPaths, m.Capabilities} {
		e.uvarint(uint64(len(list)))
		e.strings(list...)
	}
	e.strings(m.PodSubnet)
	e.varint(m.PodSubnetSince)
	return e.buf
}

// checkMetaSize fails with ErrMetaTooLarge when m, sealed, would not fit a
// memberlist alive message.
func checkMetaSize(m nodeMeta) error {
	if n := len(encodeMetaBody(m)) + sealLen; n > memberlist.MetaMaxSize {
		return fmt.Errorf("%w: %d bytes with %d labels (%d of them the signature)", ErrMetaTooLarge, n, len(m.Labels), sealLen)
	}
	return nil
}

// decoder reads the wire format. The first error sticks; later reads return
// zero values, so callers check err once at the end.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > maxStringLen || n > uint64(len(d.buf)) {
		d.fail("string length out of bounds")
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// stringList reads a count and that many strings; nil for none.
func (d *decoder) stringList() []string {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

// count reads an element count and rejects it unless that many elements of
// at least minLen bytes each could follow.
func (d *decoder) count(minLen int) int {
	n := d.uvarint()
	if n > uint64(len(d.buf)/minLen) {
		d.fail("count exceeds message size")
		return 0
	}
	return int(n)
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.buf) > 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// record decodes one record; the owner fills in Info.Node.
func (d *decoder) record(owner string) record {
	r := record{Info: InstanceInfo{ID: d.string(), Node: owner}}
	r.Counter = d.uvarint()
	flags := d.byte()
	if flags&^(flagReady|flagRunning|flagDeleted) != 0 {
		d.fail("unknown record flags")
	}
	if flags&flagDeleted != 0 {
		if flags != flagDeleted {
			d.fail("deleted record with state flags")
		}
		r.Deleted = true
		return r
	}
	r.Info.Ready = flags&flagReady != 0
	r.Info.Running = flags&flagRunning != 0
	r.Info.Namespace = d.string()
	r.Info.Workload = d.string()
	r.Info.SpecHash = d.string()
	r.Info.Addr = d.string()
	n := d.count(minPortLen)
	if n > maxPorts {
		d.fail(fmt.Sprintf("%d ports, limit %d", n, maxPorts))
		n = 0
	}
	if n > 0 {
		r.Info.Ports = make([]Port, n)
		for i := range r.Info.Ports {
			p := &r.Info.Ports[i]
			p.Name = d.string()
			port := d.varint()
			if port < math.MinInt32 || port > math.MaxInt32 {
				d.fail("port out of int32 range")
			}
			p.Port = int32(port)
			p.Protocol = d.string()
		}
	}
	return r
}

func (d *decoder) kind(want byte) {
	if k := d.byte(); d.err == nil && k != want {
		d.fail(fmt.Sprintf("message kind %d, want %d", k, want))
	}
}

// bytes reads a length-prefixed byte string without copying it.
func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if n > uint64(limit) || n > uint64(len(d.buf)) {
		d.fail("byte string length out of bounds")
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// openSealed splits a sealed message; the caller verifies the signature.
func openSealed(buf []byte) (sealed, error) {
	if len(buf) <= sealLen {
		return nil, fmt.Errorf("%w: sealed message of %d bytes", ErrMalformed, len(buf))
	}
	return sealed(buf), nil
}

func decodeDelta(buf []byte) (delta, error) {
	s, err := openSealed(buf)
	if err != nil {
		return delta{}, err
	}
	d := decoder{buf: s.body()}
	d.kind(kindDelta)
	out := delta{seal: s}
	out.Owner = d.string()
	out.Epoch = d.varint()
	out.Record = d.record(out.Owner)
	if err := d.finish(); err != nil {
		return delta{}, err
	}
	return out, nil
}

// decodeSnapshot decodes an owner's sealed snapshot. It holds no tombstones:
// an owner's snapshot lists what it runs, and its floor covers the rest.
//
// budget is how many more records the caller lets this snapshot hold (the
// rest of maxStateRecords for the message); a snapshot of more is refused
// before anything is allocated for them.
func decodeSnapshot(buf []byte, budget int) (ownerState, error) {
	s, err := openSealed(buf)
	if err != nil {
		return ownerState{}, err
	}
	d := decoder{buf: s.body()}
	d.kind(kindSnapshot)
	out := ownerState{seal: s}
	out.Owner = d.string()
	out.Epoch = d.varint()
	out.Floor = d.uvarint()
	n := d.count(minLiveRecordLen)
	if n > min(budget, maxRecordsPerOwner) {
		d.fail(fmt.Sprintf("snapshot of %d records, more than one owner keeps (%d) or the message may carry (%d left of %d)",
			n, maxRecordsPerOwner, budget, maxStateRecords))
		n = 0
	}
	out.Records = make([]record, n)
	for i := range out.Records {
		out.Records[i] = d.record(out.Owner)
		if out.Records[i].Deleted {
			d.fail("tombstone in a snapshot")
		}
	}
	if err := d.finish(); err != nil {
		return ownerState{}, err
	}
	return out, nil
}

// decodeState decodes a push/pull message. Nothing in it is verified yet.
func decodeState(buf []byte) (stateMsg, error) {
	d := decoder{buf: buf}
	d.kind(kindState)
	var out stateMsg
	n := d.count(1)
	if n > maxStateCerts {
		d.fail(fmt.Sprintf("%d certificates, limit %d", n, maxStateCerts))
	}
	for range n {
		if c := d.bytes(maxCertLen); d.err == nil {
			out.Certs = append(out.Certs, c)
		}
	}
	n = d.count(sealLen + 2)
	if n > maxStateItems+maxDecisions {
		d.fail(fmt.Sprintf("%d items, limit %d", n, maxStateItems+maxDecisions))
	}
	// Split first and size the slices exactly: appending would double them.
	blobs := make([][]byte, 0, n)
	deltas, decisions := 0, 0
	for range n {
		blob := d.bytes(len(buf))
		if d.err != nil {
			break
		}
		if len(blob) == 0 {
			d.fail("empty record in state")
			break
		}
		switch blob[0] {
		case kindDelta:
			deltas++
		case kindDecision:
			decisions++
		}
		blobs = append(blobs, blob)
	}
	switch {
	case decisions > maxDecisions:
		d.fail(fmt.Sprintf("%d decisions, limit %d", decisions, maxDecisions))
	case len(blobs)-decisions > maxStateItems:
		d.fail(fmt.Sprintf("%d records, limit %d", len(blobs)-decisions, maxStateItems))
	}
	if err := d.finish(); err != nil {
		return stateMsg{}, err
	}
	out.Deltas = make([]delta, 0, deltas)
	out.States = make([]ownerState, 0, len(blobs)-deltas-decisions)
	out.Decisions = make([]sealedDecision, 0, decisions)
	budget := maxStateRecords
	for _, blob := range blobs {
		var err error
		switch blob[0] {
		case kindDelta:
			var dl delta
			if dl, err = decodeDelta(blob); err == nil {
				out.Deltas = append(out.Deltas, dl)
			}
		case kindSnapshot:
			var st ownerState
			if st, err = decodeSnapshot(blob, budget); err == nil {
				out.States = append(out.States, st)
				budget -= len(st.Records)
			}
		case kindDecision:
			var sd sealedDecision
			if sd, err = decodeDecision(blob); err == nil {
				out.Decisions = append(out.Decisions, sd)
			}
		default:
			err = fmt.Errorf("%w: record kind %d in state", ErrMalformed, blob[0])
		}
		if err != nil {
			return stateMsg{}, err
		}
	}
	return out, nil
}

// decodeDecision decodes a sealed decision. Nothing in it is verified yet.
// Its Body and seal share buf; sealedDecision.own copies them out.
func decodeDecision(buf []byte) (sealedDecision, error) {
	if len(buf) > maxDecisionLen {
		return sealedDecision{}, fmt.Errorf("%w: decision of %d bytes, limit %d", ErrMalformed, len(buf), maxDecisionLen)
	}
	s, err := openSealed(buf)
	if err != nil {
		return sealedDecision{}, err
	}
	d := decoder{buf: s.body()}
	d.kind(kindDecision)
	key := d.bytes(MaxDecisionKey)
	author := d.bytes(maxNameLen)
	ms := d.varint()
	body := d.bytes(MaxDecisionBody)
	switch {
	case d.err != nil:
	case len(key) == 0:
		d.fail("decision with an empty key")
	case len(author) == 0:
		d.fail("decision without an author")
	case len(body) == 0:
		d.fail("decision with an empty body")
	}
	if err := d.finish(); err != nil {
		return sealedDecision{}, err
	}
	return sealedDecision{Decision: Decision{Key: string(key), Author: string(author), Time: time.UnixMilli(ms), Body: body}, seal: s}, nil
}

// decodeMeta decodes sealed node metadata. Nothing in it is verified yet.
func decodeMeta(buf []byte) (nodeMeta, sealed, error) {
	if len(buf) > memberlist.MetaMaxSize {
		return nodeMeta{}, nil, fmt.Errorf("%w: meta larger than memberlist allows", ErrMalformed)
	}
	s, err := openSealed(buf)
	if err != nil {
		return nodeMeta{}, nil, err
	}
	d := decoder{buf: s.body()}
	d.kind(kindMeta)
	var m nodeMeta
	m.Epoch = d.varint()
	m.Seq = d.uvarint()
	m.MilliCPU = d.varint()
	m.MemoryBytes = d.varint()
	m.Revision = d.string()
	m.APIAddr = d.string()
	m.DNSAddr = d.string()
	m.GossipAddr = d.string()
	if n := d.count(2); n > 0 {
		m.Labels = make(map[string]string, n)
		for range n {
			k := d.string()
			m.Labels[k] = d.string()
		}
	}
	if n := d.uvarint(); n > maxInstancesPerNode {
		d.fail("max instances out of bounds")
	} else {
		m.MaxInstances = int(n)
	}
	m.Allows = d.uvarint()
	m.HostPaths, m.Capabilities = d.stringList(), d.stringList()
	m.PodSubnet = d.string()
	m.PodSubnetSince = d.varint()
	if err := d.finish(); err != nil {
		return nodeMeta{}, nil, err
	}
	return m, s, nil
}
