// Command bench serves a generated cluster with Shoal's DNS server for dns/bench/run.sh,
// which compares it with CoreDNS's hosts plugin under dnsperf. It writes the same records
// as an /etc/hosts file for CoreDNS and a dnsperf query file, listens on loopback only, and
// runs until interrupted. It is a measuring tool, not part of the daemon.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	shoaldns "github.com/shoalhq/shoal/dns"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback host:port to serve on")
	services := flag.Int("services", 1000, "number of Services")
	instances := flag.Int("instances", 3, "ready instances per Service")
	hostsFile := flag.String("hosts", "", "write the records as a hosts file here")
	queryFile := flag.String("queries", "", "write a dnsperf query file here")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the serving here")
	flag.Parse()

	svcs := generate(*services, *instances)
	if err := writeHosts(*hostsFile, svcs); err != nil {
		log.Fatal(err)
	}
	if err := writeQueries(*queryFile, svcs); err != nil {
		log.Fatal(err)
	}

	cfg := shoaldns.DefaultConfig()
	cfg.Addr = *addr
	cfg.Logger = nil
	srv, err := shoaldns.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	snap, err := shoaldns.NewSnapshot(cfg.Domain, svcs)
	if err != nil {
		log.Fatal(err)
	}
	srv.Swap(snap)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("listening", srv.Addr()) // run.sh waits for this line
	if err := srv.Serve(ctx); err != nil {
		log.Print(err)
	}
}

// generate makes n Services with k ready instances each, every instance on its own address.
func generate(n, k int) []shoaldns.Service {
	out := make([]shoaldns.Service, n)
	for i := range out {
		svc := shoaldns.Service{Namespace: fmt.Sprintf("ns%d", i%10), Name: fmt.Sprintf("svc%d", i)}
		for j := range k {
			a := i*k + j
			svc.Endpoints = append(svc.Endpoints, shoaldns.Endpoint{
				Hostname: fmt.Sprintf("svc%d-%d", i, j),
				Addr:     netip.AddrFrom4([4]byte{10, byte(a >> 16), byte(a >> 8), byte(a)}),
				Ready:    true,
			})
		}
		out[i] = svc
	}
	return out
}

func name(svc shoaldns.Service) string {
	return svc.Name + "." + svc.Namespace + ".svc.cluster.local"
}

func writeHosts(path string, svcs []shoaldns.Service) error {
	return writeLines(path, svcs, func(w *bufio.Writer, svc shoaldns.Service) {
		for _, ep := range svc.Endpoints {
			fmt.Fprintf(w, "%s %s\n", ep.Addr, name(svc))
		}
	})
}

func writeQueries(path string, svcs []shoaldns.Service) error {
	return writeLines(path, svcs, func(w *bufio.Writer, svc shoaldns.Service) {
		fmt.Fprintf(w, "%s A\n", name(svc))
	})
}

func writeLines(path string, svcs []shoaldns.Service, line func(*bufio.Writer, shoaldns.Service)) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, svc := range svcs {
		line(w, svc)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return f.Close()
}
