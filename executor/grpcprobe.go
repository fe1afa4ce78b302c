package executor

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A gRPC probe makes one call of the standard health checking protocol,
// grpc.health.v1.Health/Check, as the kubelet does. The call is small enough to make
// by hand over the standard library's HTTP/2 client, without gRPC's library: a POST over
// plaintext HTTP/2 whose body is one length-prefixed protobuf message, answered by one
// such message and a grpc-status trailer.
//
// The container on the other end is untrusted, so what the probe reads is bounded: the
// headers and trailers (maxGRPCHeaderBytes), the data the client buffers (HTTP/2 flow
// control, grpcReceiveWindow), the message (maxGRPCMessage) and the time (the probe's
// timeout).

const (
	grpcHealthCheckPath = "/grpc.health.v1.Health/Check"
	// maxGRPCMessage bounds the response message: a HealthCheckResponse is one enum
	// field, 2 bytes; 1 KiB leaves room for fields a newer server may add.
	maxGRPCMessage = 1 << 10
	// maxGRPCHeaderBytes bounds the headers, and the trailers, a server may send.
	maxGRPCHeaderBytes = 16 << 10
	// grpcReceiveWindow is the most response data the client buffers before the server
	// must wait (the smallest flow-control window HTTP/2 allows a connection).
	grpcReceiveWindow = 64 << 10
	// maxGRPCStatusMessage bounds the grpc-message text kept in a probe's failure.
	maxGRPCStatusMessage = 200
	// grpcCodeOK is the grpc-status of a call that succeeded, grpcCodeDeadlineExceeded
	// that of one whose deadline (the grpc-timeout the probe sends) passed.
	grpcCodeOK               = 0
	grpcCodeDeadlineExceeded = 4
)

// grpcServingStatus names the values of grpc.health.v1.HealthCheckResponse.ServingStatus.
var grpcServingStatus = map[uint64]string{0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

// grpcServing is the status that makes a gRPC probe succeed.
const grpcServing = 1

// grpcCodeNames names the gRPC status codes, for messages.
var grpcCodeNames = []string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// grpcTransport speaks HTTP/2 with prior knowledge over plain TCP, as gRPC without TLS
// does, and opens a connection per check (DisableKeepAlives), as for HTTP probes. It
// never uses a proxy.
var grpcTransport = func() *http.Transport {
	t := &http.Transport{
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxGRPCHeaderBytes,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: grpcReceiveWindow,
			MaxReceiveBufferPerStream:     grpcReceiveWindow,
		},
		Protocols: new(http.Protocols),
	}
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}()

// GRPCProbe checks with the gRPC health checking protocol: the status SERVING is
// success; any other status, a gRPC error or no answer in time is a failure.
type GRPCProbe struct {
	Port int
	// Service is the name asked about; empty asks about the server as a whole.
	Service string
}

func checkGRPC(ctx context.Context, g *GRPCProbe, addr string) error {
	target := url.URL{Scheme: "http", Host: net.JoinHostPort(addr, strconv.Itoa(g.Port)), Path: grpcHealthCheckPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), bytes.NewReader(grpcHealthRequest(g.Service)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	req.Header.Set("User-Agent", probeUserAgent)
	if deadline, ok := ctx.Deadline(); ok {
		// The server may give up when the probe does; gRPC's unit "m" is milliseconds.
		req.Header.Set("Grpc-Timeout", strconv.FormatInt(max(time.Until(deadline).Milliseconds(), 1), 10)+"m")
	}
	resp, err := (&http.Client{Transport: grpcTransport}).Do(req)
	if err != nil {
		return fmt.Errorf("grpc health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("grpc health: HTTP status %s, not a gRPC answer", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		return fmt.Errorf("grpc health: content type %q, not a gRPC answer", truncate(ct, maxGRPCStatusMessage))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 5+maxGRPCMessage+1))
	if err != nil {
		return fmt.Errorf("grpc health: read answer: %w", err)
	}
	if len(body) > 5+maxGRPCMessage {
		return fmt.Errorf("grpc health: answer larger than %d bytes", 5+maxGRPCMessage)
	}
	// A gRPC error may come alone in the headers (a "trailers-only" answer) or after the
	// message in the trailers, which the body's end has made readable.
	if err := grpcStatusError(resp.Header, resp.Trailer); err != nil {
		return err
	}
	status, err := parseGRPCHealthResponse(body)
	if err != nil {
		return fmt.Errorf("grpc health: %w", err)
	}
	if status != grpcServing {
		name, ok := grpcServingStatus[status]
		if !ok {
			name = "status " + strconv.FormatUint(status, 10)
		}
		return fmt.Errorf("grpc health: %s", name)
	}
	return nil
}

// grpcStatusError returns the gRPC error that the header or trailer carries, nil for
// OK, and an error when neither says.
func grpcStatusError(header, trailer http.Header) error {
	code := cmp.Or(trailer.Get("Grpc-Status"), header.Get("Grpc-Status"))
	if code == "" {
		return errors.New("grpc health: the answer has no grpc-status")
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return fmt.Errorf("grpc health: grpc-status %q is not a number", truncate(code, maxGRPCStatusMessage))
	}
	switch n {
	case grpcCodeOK:
		return nil
	case grpcCodeDeadlineExceeded:
		// The server gave up at the probe's deadline, a moment before the probe would:
		// a timeout, as the kubelet reports it.
		return fmt.Errorf("grpc health: rpc error DeadlineExceeded: %w", context.DeadlineExceeded)
	}
	name := "code " + strconv.Itoa(n)
	if n > 0 && n < len(grpcCodeNames) {
		name = grpcCodeNames[n]
	}
	msg := cmp.Or(trailer.Get("Grpc-Message"), header.Get("Grpc-Message"))
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m // gRPC percent-encodes the message
	}
	if msg != "" {
		return fmt.Errorf("grpc health: rpc error %s: %q", name, truncate(msg, maxGRPCStatusMessage))
	}
	return fmt.Errorf("grpc health: rpc error %s", name)
}

// grpcHealthRequest is a HealthCheckRequest{service} in gRPC's framing: a zero byte (not
// compressed), the message's length as 4 bytes big-endian, then the protobuf message,
// whose only field (1, a string) is left out when empty, as protobuf does.
func grpcHealthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append(msg, 1<<3|2) // field 1, length-delimited
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// parseGRPCHealthResponse reads the status of a framed HealthCheckResponse (field 1, an
// enum). Unknown fields are skipped as protobuf does; a status not given is UNKNOWN (0).
func parseGRPCHealthResponse(b []byte) (uint64, error) {
	if len(b) < 5 {
		return 0, fmt.Errorf("answer of %d bytes, not a gRPC message", len(b))
	}
	if b[0] != 0 {
		return 0, fmt.Errorf("compressed or malformed message (flag %d)", b[0])
	}
	if n := binary.BigEndian.Uint32(b[1:5]); uint64(n) != uint64(len(b)-5) {
		return 0, fmt.Errorf("message length %d does not match the %d bytes sent", n, len(b)-5)
	}
	msg := b[5:]
	var status uint64
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return 0, errors.New("malformed protobuf field tag")
		}
		msg = msg[n:]
		field, wire := tag>>3, tag&7
		switch wire {
		case 0: // varint
			v, n := binary.Uvarint(msg)
			if n <= 0 {
				return 0, errors.New("malformed protobuf varint")
			}
			msg = msg[n:]
			if field == 1 {
				status = v
			}
		case 1, 5: // fixed 64 or 32 bits
			size := 8
			if wire == 5 {
				size = 4
			}
			if len(msg) < size {
				return 0, errors.New("truncated protobuf field")
			}
			msg = msg[size:]
		case 2: // length-delimited
			l, n := binary.Uvarint(msg)
			if n <= 0 || l > uint64(len(msg)-n) {
				return 0, errors.New("malformed protobuf length")
			}
			msg = msg[n+int(l):]
		default:
			return 0, fmt.Errorf("unsupported protobuf wire type %d", wire)
		}
	}
	return status, nil
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
