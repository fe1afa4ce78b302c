package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/hashicorp/memberlist"
)

// Wire format. Everything is a compact binary encoding: unsigned integers are
// uvarints, signed ones zig-zag varints, strings a uvarint length then bytes.
// Every decoder checks each length and count against the bytes left before
// allocating, so a hostile or corrupt message costs at most its own size and
// never panics.
//
//	delta    = kindDelta owner:string epoch:varint record
//	state    = kindState count:uvarint { owner:string epoch:varint floor:uvarint count:uvarint {record} }
//	record   = id:string counter:uvarint flags:byte [namespace workload specHash addr:string ports]  (fields only when not deleted)
//	ports    = count:uvarint { name:string port:varint protocol:string }
//	meta     = metaVersion epoch:varint milliCPU:varint memoryBytes:varint revision apiAddr dnsAddr:string
//	           count:uvarint { key:string value:string }  (labels sorted by key)

// ErrMalformed is returned (wrapped) when a message cannot be decoded.
var ErrMalformed = errors.New("gossip: malformed message")

// ErrMetaTooLarge means the encoded node metadata exceeds memberlist's
// 512-byte limit; shorten or drop labels.
var ErrMetaTooLarge = fmt.Errorf("gossip: node metadata larger than %d bytes", memberlist.MetaMaxSize)

const (
	kindDelta byte = 1
	kindState byte = 2

	metaVersion byte = 1

	// maxStringLen bounds every decoded string. It is at least anything the
	// encoders accept (a delta fits one UDP packet, meta 512 bytes), so it
	// only stops garbage.
	maxStringLen = maxUDPBufferSize

	flagReady   = 1 << 0
	flagRunning = 1 << 1
	flagDeleted = 1 << 2

	// minRecordLen is the smallest encoded record (empty id, counter, flags),
	// used to bound counts before allocating.
	minRecordLen = 3
	// minOwnerLen is the smallest encoded owner block.
	minOwnerLen = 4
	// minPortLen is the smallest encoded port.
	minPortLen = 3
)

// delta is one change to one instance of one owner, broadcast by gossip.
type delta struct {
	Owner  string
	Epoch  int64
	Record record
}

// record is the latest known version of one instance. Deleted records
// (tombstones) carry only Info.ID.
type record struct {
	Counter uint64
	Deleted bool
	Info    InstanceInfo
}

// ownerState is everything one node knows about one owner's instances, as
// exchanged by push/pull. See store for what Floor means.
type ownerState struct {
	Owner   string
	Epoch   int64
	Floor   uint64
	Records []record
}

type encoder struct{ buf []byte }

func (e *encoder) byte(b byte)      { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) string(s string)  { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
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

func encodeDelta(d delta) []byte {
	e := encoder{buf: make([]byte, 0, 128)}
	e.byte(kindDelta)
	e.string(d.Owner)
	e.varint(d.Epoch)
	e.record(d.Record)
	return e.buf
}

func encodeState(states []ownerState) []byte {
	e := encoder{}
	e.byte(kindState)
	e.uvarint(uint64(len(states)))
	for _, s := range states {
		e.string(s.Owner)
		e.varint(s.Epoch)
		e.uvarint(s.Floor)
		e.uvarint(uint64(len(s.Records)))
		for _, r := range s.Records {
			e.record(r)
		}
	}
	return e.buf
}

// encodeMeta encodes node metadata with this process's epoch, failing with
// ErrMetaTooLarge when it would not fit a memberlist alive message.
func encodeMeta(epoch int64, m Meta) ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 256)}
	e.byte(metaVersion)
	e.varint(epoch)
	e.varint(m.MilliCPU)
	e.varint(m.MemoryBytes)
	e.strings(m.Revision, m.APIAddr, m.DNSAddr)
	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.strings(k, m.Labels[k])
	}
	if len(e.buf) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes with %d labels", ErrMetaTooLarge, len(e.buf), len(keys))
	}
	return e.buf, nil
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
	if n := d.count(minPortLen); n > 0 {
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

func decodeDelta(buf []byte) (delta, error) {
	d := decoder{buf: buf}
	d.kind(kindDelta)
	var out delta
	out.Owner = d.string()
	out.Epoch = d.varint()
	out.Record = d.record(out.Owner)
	if err := d.finish(); err != nil {
		return delta{}, err
	}
	return out, nil
}

func decodeState(buf []byte) ([]ownerState, error) {
	d := decoder{buf: buf}
	d.kind(kindState)
	out := make([]ownerState, d.count(minOwnerLen))
	for i := range out {
		s := &out[i]
		s.Owner = d.string()
		s.Epoch = d.varint()
		s.Floor = d.uvarint()
		s.Records = make([]record, d.count(minRecordLen))
		for j := range s.Records {
			s.Records[j] = d.record(s.Owner)
		}
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeMeta decodes node metadata and the epoch of the process that sent it.
func decodeMeta(buf []byte) (int64, Meta, error) {
	d := decoder{buf: buf}
	if len(buf) > memberlist.MetaMaxSize {
		d.fail("meta larger than memberlist allows")
	}
	if v := d.byte(); d.err == nil && v != metaVersion {
		d.fail(fmt.Sprintf("meta version %d, want %d", v, metaVersion))
	}
	epoch := d.varint()
	var m Meta
	m.MilliCPU = d.varint()
	m.MemoryBytes = d.varint()
	m.Revision = d.string()
	m.APIAddr = d.string()
	m.DNSAddr = d.string()
	if n := d.count(2); n > 0 {
		m.Labels = make(map[string]string, n)
		for range n {
			k := d.string()
			m.Labels[k] = d.string()
		}
	}
	if err := d.finish(); err != nil {
		return 0, Meta{}, err
	}
	return epoch, m, nil
}
