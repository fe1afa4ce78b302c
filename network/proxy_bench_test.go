package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"
)

// proxyBenchServices returns n Services of one TCP port with three endpoints each.
func proxyBenchServices(n int) []Service {
	services := make([]Service, n)
	for i := range services {
		services[i] = Service{
			Namespace: "bench",
			Name:      fmt.Sprintf("svc-%d", i),
			VIP:       netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}),
			Ports: []ServicePort{{Name: "http", Protocol: ProtocolTCP, Port: 80, Endpoints: []Endpoint{
				{netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}), 8080},
				{netip.AddrFrom4([4]byte{10, 245, byte(i >> 8), byte(i)}), 8080},
				{netip.AddrFrom4([4]byte{10, 246, byte(i >> 8), byte(i)}), 8080},
			}}},
		}
	}
	return services
}

// BenchmarkProxyEndpointChange measures one Sync that changes the endpoints of one
// Service, with 500 and 5,000 Services of three endpoints already programmed: the cost
// should not depend on the number of Services. change=replace swaps one endpoint for
// another (the number of endpoints stays), change=scale removes one and adds it back in
// turn (the number changes, which moves the Service to another spread chain). Reported:
// the median and p99 of one change, the part of it spent in memory (comparing every Service
// with the last Sync's, which does grow with their number, and checking what changed), and
// the time of the first, whole-table Sync. call=sync hands every Service to Sync;
// call=update hands only the changed one to Update, as the agent does.
func BenchmarkProxyEndpointChange(b *testing.B) {
	for _, call := range []string{"sync", "update"} {
		for _, n := range []int{500, 5000} {
			for _, change := range []string{"replace", "scale"} {
				b.Run(fmt.Sprintf("call=%s/services=%d/change=%s", call, n, change), func(b *testing.B) {
					benchProxyEndpointChange(b, n, change == "scale", call == "update")
				})
			}
		}
	}
}

func benchProxyEndpointChange(b *testing.B, n int, scale, update bool) {
	skipUnlessProxyKernel(b)
	ns := newProxyTestNetns(b, proxyTestPrefix(b), "bench")
	p, err := NewProxy(ProxyConfig{ClusterCIDR: netip.MustParsePrefix("10.244.0.0/14"), NetNS: ns.path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	services := proxyBenchServices(n)
	start := time.Now()
	if err := p.Sync(services); err != nil {
		b.Fatal(err)
	}
	full := time.Since(start)

	port := &services[n/2].Ports[0]
	all := slices.Clone(port.Endpoints)
	var took, inMemory []time.Duration
	i := 0
	for b.Loop() {
		i++
		switch {
		case !scale:
			port.Endpoints[2].Addr = netip.AddrFrom4([4]byte{10, 247, byte(i >> 8), byte(i)})
		case i%2 == 1:
			port.Endpoints = all[:2]
		default:
			port.Endpoints = all
		}
		start := time.Now()
		if update {
			err = p.Update(services[n/2:n/2+1], nil)
		} else {
			err = p.Sync(services)
		}
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		inMemory = append(inMemory, p.last.inMemory)
	}
	b.ReportMetric(proxyMillis(proxyPercentile(took, 50)), "ms/change-median")
	b.ReportMetric(proxyMillis(proxyPercentile(took, 99)), "ms/change-p99")
	b.ReportMetric(proxyMillis(proxyPercentile(inMemory, 50)), "ms/in-memory-median")
	b.ReportMetric(proxyMillis(full), "ms/first-sync")
}

// BenchmarkProxyRequests compares HTTP requests per second through a Service's VIP with
// requests straight to its one endpoint, in the same run, requests alternated, from one
// instance to another on the same node. conn=keepalive reuses one connection, as HTTP
// clients do; conn=new opens one per request, the worst case for the proxy, whose rules see
// the first packet of every connection. The direct path is bridged: with br_netfilter off
// (brnf=off) it meets no netfilter at all, while the VIP's is routed and tracked; with it on
// (as Kubernetes nodes run), both are tracked.
func BenchmarkProxyRequests(b *testing.B) {
	skipUnlessProxyKernel(b)
	tb := newProxyTestbed(b, "a", "b")
	const httpPort = 8081
	if err := tb.proxy(b).Sync([]Service{{Namespace: "bench", Name: "web", VIP: proxyTestVIP, Ports: []ServicePort{
		{Name: "http", Protocol: ProtocolTCP, Port: 80, Endpoints: []Endpoint{{tb.podAddr["b"], httpPort}}},
	}}}); err != nil {
		b.Fatal(err)
	}
	var ln net.Listener
	if err := tb.pods["b"].do(func() (err error) { ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", httpPort)); return err }); err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	b.Cleanup(func() { srv.Close(); <-done })

	brnf := "/proc/sys/net/bridge/bridge-nf-call-iptables"
	for _, c := range []struct {
		name      string
		brnf      string
		keepAlive bool
	}{
		{"brnf=off/conn=keepalive", "0", true},
		{"brnf=off/conn=new", "0", false},
		{"brnf=on/conn=keepalive", "1", true},
		{"brnf=on/conn=new", "1", false},
	} {
		keepAlive := c.keepAlive
		b.Run(c.name, func(b *testing.B) {
			if _, err := os.Stat(brnf); err != nil {
				if c.brnf == "1" {
					b.Skip("no br_netfilter in this kernel")
				}
			} else {
				tb.node.run(b, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables="+c.brnf)
			}
			client := &http.Client{Transport: &http.Transport{
				DisableKeepAlives: !keepAlive,
				DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
					err = tb.pods["a"].do(func() error {
						c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
						return err
					})
					return c, err
				},
			}}
			defer client.CloseIdleConnections()
			get := func(url string) time.Duration {
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					b.Fatalf("GET %s: %v", url, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != "ok" {
					b.Fatalf("GET %s: %q %v", url, body, err)
				}
				return time.Since(start)
			}
			directURL := fmt.Sprintf("http://%s:%d/", tb.podAddr["b"], httpPort)
			vipURL := fmt.Sprintf("http://%s:80/", proxyTestVIP)
			// A round alternates the two, request by request, so that both meet the same
			// load from the rest of the machine.
			const perRound = 500
			round := func() (direct, vip float64) {
				var viaDirect, viaVIP time.Duration
				for range perRound {
					viaDirect += get(directURL)
					viaVIP += get(vipURL)
				}
				return perRound / viaDirect.Seconds(), perRound / viaVIP.Seconds()
			}
			round() // warm up
			var viaDirect, viaVIP []float64
			for b.Loop() {
				d, v := round()
				viaDirect = append(viaDirect, d)
				viaVIP = append(viaVIP, v)
			}
			d, v := proxyMedian(viaDirect), proxyMedian(viaVIP)
			b.ReportMetric(d, "req/s-direct")
			b.ReportMetric(v, "req/s-vip")
			b.ReportMetric(v/d, "vip/direct")
		})
	}
}

func proxyPercentile(d []time.Duration, pct int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*pct/100]
}

func proxyMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func proxyMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
