package executor_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalhq/shoal/executor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// grpcProbe is a readiness probe of the gRPC health of service at port.
func grpcProbe(port int, service string, timeout time.Duration) executor.ProbeSpec {
	return executor.ProbeSpec{Kind: executor.ProbeReadiness, GRPC: &executor.GRPCProbe{Port: port, Service: service},
		Timeout: timeout, Period: time.Second, SuccessThreshold: 1, FailureThreshold: 1}
}

// serveGRPC serves s on a port of 127.0.0.1 until the test ends and returns the port.
func serveGRPC(t *testing.T, s *grpc.Server) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// checkGRPC runs one check of probe p against 127.0.0.1 and returns its error text, ""
// on success.
func checkGRPC(t *testing.T, p executor.ProbeSpec) string {
	t.Helper()
	if err := executor.Check(context.Background(), p, "127.0.0.1", nil, "", ""); err != nil {
		return err.Error()
	}
	return ""
}

// TestGRPCProbeAgainstGRPCGo checks against grpc-go's own health server: SERVING is
// success; NOT_SERVING, SERVICE_UNKNOWN, a service the server does not know, and a server
// without the health service fail and say why; a change of status shows at the next check.
func TestGRPCProbeAgainstGRPCGo(t *testing.T) {
	hs := health.NewServer() // the server as a whole ("") starts SERVING
	hs.SetServingStatus("cart", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("ads", healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
	hs.SetServingStatus("checkout", healthpb.HealthCheckResponse_SERVING)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	port := serveGRPC(t, s)
	bare := serveGRPC(t, grpc.NewServer())

	tests := []struct {
		name    string
		port    int
		service string
		want    string // "" for success, else a part of the error
	}{
		{"server as a whole", port, "", ""},
		{"serving service", port, "checkout", ""},
		{"not serving", port, "cart", "grpc health: NOT_SERVING"},
		{"service unknown status", port, "ads", "grpc health: SERVICE_UNKNOWN"},
		{"service the server does not know", port, "nope", "rpc error NotFound"},
		{"no health service", bare, "", "rpc error Unimplemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkGRPC(t, grpcProbe(tt.port, tt.service, 5*time.Second))
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("check: %q, want %q", got, tt.want)
			}
		})
	}
	hs.SetServingStatus("checkout", healthpb.HealthCheckResponse_NOT_SERVING)
	if got := checkGRPC(t, grpcProbe(port, "checkout", 5*time.Second)); !strings.Contains(got, "NOT_SERVING") {
		t.Errorf("after NOT_SERVING: %q", got)
	}
	hs.SetServingStatus("checkout", healthpb.HealthCheckResponse_SERVING)
	if got := checkGRPC(t, grpcProbe(port, "checkout", 5*time.Second)); got != "" {
		t.Errorf("after SERVING again: %q", got)
	}
}

// stuckHealth is a health service whose Check answers only when the caller gives up.
type stuckHealth struct {
	healthpb.UnimplementedHealthServer
}

func (stuckHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestGRPCProbeTimeout: a server that does not answer fails the check once the probe's
// timeout has passed, not later.
func TestGRPCProbeTimeout(t *testing.T) {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, stuckHealth{})
	port := serveGRPC(t, s)
	began := time.Now()
	got := checkGRPC(t, grpcProbe(port, "", 300*time.Millisecond))
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the check took %v with a timeout of 300ms", took)
	}
	if !strings.Contains(got, "timed out") {
		t.Errorf("check of a server that does not answer: %q, want a timeout", got)
	}
}

// serveH2C serves h over plaintext HTTP/2 (as gRPC servers speak) until the test ends.
func serveH2C(t *testing.T, h http.HandlerFunc) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// grpcAnswer writes a gRPC answer: the given body, then a grpc-status trailer of status.
func grpcAnswer(body []byte, status string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.Write(body)
		w.Header().Set("Grpc-Status", status)
	}
}

// padded adds n headers of 1000 bytes to what h answers.
func padded(n int, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := range n {
			w.Header().Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("p", 1000))
		}
		h(w, r)
	}
}

// TestGRPCProbeHostileServers: answers that are not a well-formed health response fail
// the check with a reason, and a server that sends without end costs the node a bounded
// amount of memory.
func TestGRPCProbeHostileServers(t *testing.T) {
	serving := []byte{0, 0, 0, 0, 2, 0x08, 0x01}
	// A newer server may add fields: unknown ones (here field 2, a string, and field 3, a
	// fixed64) are skipped.
	servingPlus := []byte{0, 0, 0, 0, 15, 0x12, 0x02, 'h', 'i', 0x08, 0x01, 0x19, 1, 2, 3, 4, 5, 6, 7, 8}
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		chunk := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"hand-made SERVING", grpcAnswer(serving, "0"), ""},
		{"unknown fields skipped", grpcAnswer(servingPlus, "0"), ""},
		{"status not given is UNKNOWN", grpcAnswer([]byte{0, 0, 0, 0, 0}, "0"), "grpc health: UNKNOWN"},
		{"status out of the enum", grpcAnswer([]byte{0, 0, 0, 0, 2, 0x08, 0x09}, "0"), "grpc health: status 9"},
		{"garbage body", grpcAnswer([]byte("<html>hello</html>"), "0"), "malformed message"},
		{"length not matching", grpcAnswer([]byte{0, 0, 0, 0, 9, 0x08, 0x01}, "0"), "does not match"},
		{"truncated varint", grpcAnswer([]byte{0, 0, 0, 0, 2, 0x08, 0x80}, "0"), "malformed protobuf"},
		{"length beyond the message", grpcAnswer([]byte{0, 0, 0, 0, 3, 0x12, 0x7f, 0}, "0"), "malformed protobuf length"},
		{"compressed", grpcAnswer([]byte{1, 0, 0, 0, 2, 0x08, 0x01}, "0"), "compressed"},
		{"empty body", grpcAnswer(nil, "0"), "not a gRPC message"},
		{"no grpc-status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(serving)
		}, "no grpc-status"},
		{"error status with a message", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "14")
			w.Header().Set("Grpc-Message", "draining%0A"+strings.Repeat("x", 500))
			w.WriteHeader(http.StatusOK)
		}, `rpc error Unavailable: "draining\n` + strings.Repeat("x", 190)},
		{"not gRPC content", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html></html>"))
		}, `content type "text/html", not a gRPC answer`},
		{"HTTP error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusNotFound) }, "HTTP status 404"},
		{"oversized message", grpcAnswer(append([]byte{0, 0, 0, 0x10, 0}, make([]byte, 4096)...), "0"), "answer larger than"},
		{"endless body", endless, "answer larger than"},
		{"headers within the limit", padded(8, grpcAnswer(serving, "0")), ""},
		{"oversized headers", padded(64, grpcAnswer(serving, "0")), "connection error"},
		{"oversized trailers", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "X-Pad")
			w.Write(serving)
			w.Header().Set("X-Pad", strings.Repeat("p", 64<<10))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}, "read answer: connection error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := serveH2C(t, tt.handler)
			got := checkGRPC(t, grpcProbe(port, "", 5*time.Second))
			t.Logf("check: %q", got)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("check: %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("memory", func(t *testing.T) {
		port := serveH2C(t, endless)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			checkGRPC(t, grpcProbe(port, "", 5*time.Second))
		}
		runtime.ReadMemStats(&after)
		// The server sends as fast as flow control lets it; each check reads at most its
		// receive window. Server and client share this process: the bound covers both.
		perCheck := (after.TotalAlloc - before.TotalAlloc) / 10
		t.Logf("%d bytes allocated per check", perCheck)
		if perCheck > 1<<20 {
			t.Errorf("a check of an endless answer allocated %d bytes", perCheck)
		}
	})
}

// TestGRPCProbeNotGRPC: what is not a gRPC server fails the check with the reason.
func TestGRPCProbeNotGRPC(t *testing.T) {
	h1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hi")) }))
	defer h1.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	tests := []struct {
		name string
		port int
		want string
	}{
		{"HTTP/1.1 server", h1.Listener.Addr().(*net.TCPAddr).Port, "grpc health"},
		{"nothing listening", refusedPort, "connection refused"},
	}
	for _, tt := range tests {
		got := checkGRPC(t, grpcProbe(tt.port, "", 2*time.Second))
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: check %q, want %q", tt.name, got, tt.want)
		}
	}
}
