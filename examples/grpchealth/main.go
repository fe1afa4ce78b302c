// Command grpchealth is a gRPC server that serves only the standard health checking
// service (grpc.health.v1.Health), with grpc-go's own implementation: the test app for
// Shoal's gRPC probes. It is configured by environment variables:
//
//	PORT           port to listen on, on every address (default 50051)
//	SERVICE        the service name whose status it sets besides the server's ("")
//	SERVING_AFTER  report NOT_SERVING until this long after start (a Go duration), then SERVING
//
// SIGUSR1 sets NOT_SERVING and SIGUSR2 SERVING again (for both names); SIGTERM stops it.
package main

import (
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	log.SetFlags(0)
	port := os.Getenv("PORT")
	if port == "" {
		port = "50051"
	}
	var after time.Duration
	if v := os.Getenv("SERVING_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			log.Fatalf("grpchealth: SERVING_AFTER=%q: %v", v, err)
		}
		after = d
	}
	names := []string{""}
	if s := os.Getenv("SERVICE"); s != "" {
		names = append(names, s)
	}
	hs := health.NewServer()
	set := func(st healthpb.HealthCheckResponse_ServingStatus) {
		for _, n := range names {
			hs.SetServingStatus(n, st)
		}
		log.Printf("grpchealth: %v", st)
	}
	set(healthpb.HealthCheckResponse_NOT_SERVING)
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatalf("grpchealth: %v", err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln) // ends with Stop below
	log.Printf("grpchealth: listening on %s", ln.Addr())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	serving := time.After(after)
	for {
		select {
		case <-serving:
			set(healthpb.HealthCheckResponse_SERVING)
		case s := <-sigs:
			switch s {
			case syscall.SIGUSR1:
				set(healthpb.HealthCheckResponse_NOT_SERVING)
			case syscall.SIGUSR2:
				set(healthpb.HealthCheckResponse_SERVING)
			default:
				log.Printf("grpchealth: got %v, stopping", s)
				srv.Stop()
				return
			}
		}
	}
}
