package gossip

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// guardTransport is memberlist's NetTransport with a check on everything
// received before memberlist decodes it. memberlist decompresses any
// compressed message it receives whatever its own EnableCompression says,
// without a size cap (an LZW stream expands up to ~2,700:1), and allocates
// what a push/pull header announces before reading it. So a member holding
// the gossip key could make every node allocate gigabytes. The guard drops a
// packet or stream that is compressed, a stream message larger than
// maxStreamBytes, and a push/pull whose header announces more nodes or user
// state than the message holds. Shoal never compresses (memberlistConfig sets
// EnableCompression=false), so no honest message is dropped.
//
// Checking means decrypting once more (AES-GCM with the same keyring), which
// costs about a microsecond per packet.
type guardTransport struct {
	*memberlist.NetTransport
	keys    [][]byte // the keyring; empty in plaintext mode
	reject  func(what string, err error)
	packets chan *memberlist.Packet
	streams chan net.Conn
	stop    chan struct{} // closed by Shutdown: stop forwarding, keep draining
	closed  chan struct{} // closed once the NetTransport's listeners have exited
	done    sync.WaitGroup
}

// maxStreamBytes caps one stream message (a push/pull state). memberlist's own
// cap is 20 MiB; the full state of a 100-node cluster with 100 instances each
// is about 1.5 MiB.
const maxStreamBytes = 8 << 20

// memberlist message types (memberlist/net.go; the numbers are protocol).
const (
	mlPushPull byte = 6
	mlCompound byte = 7
	mlCompress byte = 9
	mlEncrypt  byte = 10
	mlHasCrc   byte = 12
	mlHasLabel byte = 244
)

// errCompressed and friends name why the guard dropped something.
var (
	errCompressed = errors.New("compressed message (Shoal never compresses; dropped to bound decoding)")
	errLabelled   = errors.New("labelled message (Shoal sets no label)")
	errNested     = errors.New("crc and compound wrappers nested deeper than memberlist ever sends")
)

func newGuardTransport(nt *memberlist.NetTransport, keys [][]byte, reject func(string, error)) *guardTransport {
	g := &guardTransport{
		NetTransport: nt, keys: keys, reject: reject,
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		stop: make(chan struct{}), closed: make(chan struct{}),
	}
	g.done.Add(2)
	go g.filterPackets()
	go g.filterStreams()
	return g
}

// PacketCh delivers the packets that passed the check.
func (g *guardTransport) PacketCh() <-chan *memberlist.Packet { return g.packets }

// StreamCh delivers accepted connections whose first message is checked as memberlist reads it.
func (g *guardTransport) StreamCh() <-chan net.Conn { return g.streams }

// DialTimeout and DialAddressTimeout check the reply on dialled connections too
// (a push/pull's answer comes back on the connection this node opened).
func (g *guardTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := g.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return g.guard(conn), nil
}

// DialAddressTimeout is DialTimeout for memberlist's node-aware calls.
func (g *guardTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return g.DialTimeout(a.Addr, timeout)
}

// Shutdown stops the transport and then the filters. The filters drain the
// transport's channels until its listeners have exited: a listener blocked
// handing over a packet would make NetTransport.Shutdown wait forever.
func (g *guardTransport) Shutdown() error {
	close(g.stop)
	err := g.NetTransport.Shutdown()
	close(g.closed)
	g.done.Wait()
	return err
}

func (g *guardTransport) filterPackets() {
	defer g.done.Done()
	in := g.NetTransport.PacketCh()
	for {
		select {
		case <-g.closed:
			return
		case p := <-in:
			if err := g.checkPacket(p.Buf); err != nil {
				g.reject("packet from "+p.From.String(), err)
				continue
			}
			select {
			case g.packets <- p:
			case <-g.stop: // memberlist no longer reads: drop it
			}
		}
	}
}

func (g *guardTransport) filterStreams() {
	defer g.done.Done()
	in := g.NetTransport.StreamCh()
	for {
		select {
		case <-g.closed:
			return
		case conn := <-in:
			select {
			case g.streams <- g.guard(conn):
			case <-g.stop:
				conn.Close()
			}
		}
	}
}

// checkPacket decrypts a packet as memberlist will and checks what is inside.
func (g *guardTransport) checkPacket(buf []byte) error {
	if len(buf) > 0 && buf[0] == mlHasLabel {
		return errLabelled
	}
	plain := buf
	if len(g.keys) > 0 {
		var err error
		if plain, err = g.decrypt(buf, nil); err != nil {
			return nil // memberlist rejects it itself
		}
	}
	return checkMessage(plain, 0)
}

// checkMessage rejects compression at any depth of crc and compound wrapping.
func checkMessage(buf []byte, depth int) error {
	if len(buf) == 0 {
		return nil
	}
	switch buf[0] {
	case mlCompress:
		return errCompressed
	case mlHasCrc, mlCompound:
		// memberlist unwraps any depth of either; an honest member never nests
		// them more than a crc around a compound, so deeper nesting (which could
		// hide a compressed message past this check) is refused.
		if depth >= 4 {
			return errNested
		}
	}
	switch buf[0] {
	case mlHasCrc:
		if len(buf) >= 5 {
			return checkMessage(buf[5:], depth+1)
		}
	case mlCompound:
		if len(buf) < 2 {
			return nil
		}
		n := int(buf[1])
		rest := buf[2:]
		if len(rest) < 2*n {
			return nil
		}
		lens, rest := rest[:2*n], rest[2*n:]
		for i := range n {
			l := int(binary.BigEndian.Uint16(lens[2*i:]))
			if l > len(rest) {
				return nil
			}
			if err := checkMessage(rest[:l], depth+1); err != nil {
				return err
			}
			rest = rest[l:]
		}
	}
	return nil
}

// decrypt opens memberlist's AES-GCM format: version byte, 12-byte nonce,
// ciphertext (version 0 adds PKCS#7 padding, which the checks ignore).
func (g *guardTransport) decrypt(msg, authData []byte) ([]byte, error) {
	const nonceSize = 12
	if len(msg) < 1+nonceSize+16 || msg[0] > 1 {
		return nil, errors.New("not an encrypted message")
	}
	for _, key := range g.keys {
		block, err := aes.NewCipher(key)
		if err != nil {
			continue
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			continue
		}
		if plain, err := gcm.Open(nil, msg[1:1+nonceSize], msg[1+nonceSize:], authData); err == nil {
			return plain, nil
		}
	}
	return nil, errors.New("no key decrypts it")
}

// guard wraps conn so that the first message read from it is checked.
func (g *guardTransport) guard(conn net.Conn) net.Conn {
	return &guardedConn{Conn: conn, g: g}
}

// guardedConn reads and checks the first message of a stream whole, then
// replays it to memberlist; later reads pass through. A stream whose first
// message fails the check (or ends before it) is closed, and every later read
// returns that error again: memberlist may read once more after an error.
type guardedConn struct {
	net.Conn
	g       *guardTransport
	checked bool
	r       io.Reader
	err     error
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if !c.checked {
		c.checked = true
		c.r, c.err = c.g.readFirst(c.Conn)
		if c.err != nil {
			c.g.reject("stream from "+c.RemoteAddr().String(), c.err)
			c.Conn.Close()
		}
	}
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(p)
}

// readFirst reads one stream message and returns a reader that yields it and
// then the rest of the connection.
func (g *guardTransport) readFirst(conn net.Conn) (io.Reader, error) {
	br := bufio.NewReader(conn)
	head, err := br.Peek(1)
	if err != nil {
		return nil, err
	}
	switch head[0] {
	case mlCompress:
		return nil, errCompressed
	case mlHasLabel:
		return nil, errLabelled
	case mlEncrypt:
	default:
		return br, nil // plaintext: memberlist rejects it when a key is set
	}
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[1:])
	if size > maxStreamBytes {
		return nil, fmt.Errorf("stream message of %d bytes, limit %d", size, maxStreamBytes)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	if plain, err := g.decrypt(body, hdr); err == nil {
		if err := checkStream(plain); err != nil {
			return nil, err
		}
	}
	return io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(body), br), nil
}

// checkStream checks a decrypted stream message: no compression, and a
// push/pull header that announces no more than the message holds (memberlist
// allocates what it announces before reading).
func checkStream(plain []byte) error {
	if len(plain) == 0 {
		return nil
	}
	switch plain[0] {
	case mlCompress:
		return errCompressed
	case mlPushPull:
		var h struct {
			Nodes        int
			UserStateLen int
			Join         bool
		}
		if err := codec.NewDecoderBytes(plain[1:], &codec.MsgpackHandle{}).Decode(&h); err != nil {
			return fmt.Errorf("push/pull header: %w", err)
		}
		// Each node state is at least a dozen bytes of msgpack.
		if h.Nodes < 0 || h.UserStateLen < 0 || h.Nodes > len(plain)/12 || h.UserStateLen > len(plain) {
			return fmt.Errorf("push/pull header announces %d nodes and %d bytes of state in a %d-byte message", h.Nodes, h.UserStateLen, len(plain))
		}
	}
	return nil
}
