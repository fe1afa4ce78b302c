package dns

import (
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// serveUDP answers the queries arriving on conn until conn is closed, then waits for the
// forwards it started. miekg/dns's UDP server starts a goroutine per packet, whose stack
// then grows while the query is unpacked — a tenth of the CPU under load. Here one
// long-lived reader per CPU answers from the snapshot in place; only a forward, which
// waits on an upstream, gets a goroutine of its own (as many as MaxConcurrentForwards wait).
//
// Replies leave from the address the socket is bound to, so New gives this loop only
// sockets bound to one address; on a wildcard socket miekg/dns's server picks each reply's
// source address to match the query's destination.
func (s *Server) serveUDP(conn *net.UDPConn) error {
	var readers, forwards sync.WaitGroup
	errs := make(chan error, runtime.GOMAXPROCS(0))
	for range cap(errs) {
		readers.Go(func() { errs <- s.readUDP(conn, &forwards) })
	}
	readers.Wait()
	forwards.Wait()
	return <-errs
}

// readUDP is one reader of serveUDP.
func (s *Server) readUDP(conn *net.UDPConn, forwards *sync.WaitGroup) error {
	in := make([]byte, dns.DefaultMsgSize)
	out := make([]byte, 0, dns.DefaultMsgSize)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(in)
		if err != nil {
			// Shutdown (a past read deadline) or a broken socket: either way every reader
			// stops, so that serveUDP returns and Serve sees the error.
			conn.SetReadDeadline(time.Unix(1, 0))
			return err
		}
		r := new(dns.Msg)
		// Unpack copies what it keeps (miekg/dns's own server reuses its buffers the same
		// way). A packet that does not parse gets no answer: it could be a spoofed source.
		if r.Unpack(in[:n]) != nil {
			continue
		}
		w := &udpWriter{conn: conn, remote: net.UDPAddrFromAddrPort(from), buf: out}
		if fw, fr := s.answer(w, r); fr != nil {
			// The forward outlives this read: it writes from its own buffer.
			forwards.Go(func() { s.forward(rebind(fw, &udpWriter{conn: conn, remote: w.remote}), fr) })
		}
	}
}

// udpWriter is the dns.ResponseWriter for one query read by readUDP.
type udpWriter struct {
	conn   *net.UDPConn
	remote *net.UDPAddr
	buf    []byte // the reader's scratch space for in-place answers; nil for forwards
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.remote }

// WriteMsg packs m and sends it to the client.
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	wire, err := m.PackBuffer(w.buf)
	if err != nil {
		return err
	}
	_, err = w.Write(wire)
	return err
}

// Write sends a packed message to the client.
func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDP(b, w.remote) }

// Close, TsigStatus, TsigTimersOnly and Hijack do nothing: a UDP query has no connection
// of its own, and the server verifies no TSIG.
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
