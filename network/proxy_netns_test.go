package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file builds what the proxy's kernel tests run in: network namespaces the test
// creates (named shoaltest-proxy-<random>-<role>) and deletes at cleanup, even on failure.
// Nothing touches the machine's own namespace.

// skipUnlessProxyKernel skips a test that needs root and real network namespaces.
func skipUnlessProxyKernel(t testing.TB) {
	t.Helper()
	skipUnlessRoot(t)
	for _, bin := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

// proxyTestNetns is a named network namespace the test created.
type proxyTestNetns struct {
	name string
	path string
}

// newProxyTestNetns creates a namespace and deletes it at cleanup.
func newProxyTestNetns(t testing.TB, prefix, role string) *proxyTestNetns {
	t.Helper()
	n := &proxyTestNetns{name: prefix + "-" + role}
	n.path = "/var/run/netns/" + n.name
	proxyRunCmd(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.name, err, out)
		}
	})
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

// proxyTestPrefix is a prefix unique to this test run.
func proxyTestPrefix(t testing.TB) string { return "shoaltest-proxy-" + randomHex(t, 3) }

// run runs a command inside the namespace.
func (n *proxyTestNetns) run(t testing.TB, args ...string) string {
	t.Helper()
	return proxyRunCmd(t, append([]string{"nsenter", "--net=" + n.path, "--"}, args...)...)
}

func proxyRunCmd(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// do runs fn on a thread that has entered the namespace; sockets fn opens stay in it.
func (n *proxyTestNetns) do(fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open(n.path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine.
		return errors.Join(ferr, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// proxyTestbed is a node with a bridge and instances on it, and a client outside the node:
//
//	client 192.168.77.2 ── up0 192.168.77.1  node  br0 10.244.1.1/24 ── a .2, b .3, c .4
//
// The node routes by default to the client, which stands for the outside world too; the
// client has no route to the pod or service ranges. br_netfilter is off on the node's
// bridge, as on a machine without the module.
type proxyTestbed struct {
	node, client *proxyTestNetns
	pods         map[string]*proxyTestNetns
	podAddr      map[string]netip.Addr
	servers      *proxyTestServers
}

var (
	proxyTestCluster   = netip.MustParsePrefix("10.244.0.0/16")
	proxyTestPodSubnet = netip.MustParsePrefix("10.244.1.0/24")
	proxyTestBridge    = netip.MustParseAddr("10.244.1.1")
	proxyTestNode      = netip.MustParseAddr("192.168.77.1")
	proxyTestClient    = netip.MustParseAddr("192.168.77.2")
)

// The ports the instances' servers listen on.
const (
	proxyTestTCPPort = 8080
	proxyTestUDPPort = 5353
)

func newProxyTestbed(t testing.TB, podNames ...string) *proxyTestbed {
	t.Helper()
	prefix := proxyTestPrefix(t)
	tb := &proxyTestbed{
		node:    newProxyTestNetns(t, prefix, "node"),
		client:  newProxyTestNetns(t, prefix, "client"),
		pods:    map[string]*proxyTestNetns{},
		podAddr: map[string]netip.Addr{},
	}
	node := tb.node
	node.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		node.run(t, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	}
	node.run(t, "ip", "link", "add", "br0", "type", "bridge")
	node.run(t, "ip", "addr", "add", proxyTestBridge.String()+"/24", "dev", "br0")
	node.run(t, "ip", "link", "set", "br0", "up")
	node.run(t, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", tb.client.name)
	node.run(t, "ip", "addr", "add", proxyTestNode.String()+"/24", "dev", "up0")
	node.run(t, "ip", "link", "set", "up0", "up")
	node.run(t, "ip", "route", "add", "default", "via", proxyTestClient.String())
	tb.client.run(t, "ip", "addr", "add", proxyTestClient.String()+"/24", "dev", "eth0")
	tb.client.run(t, "ip", "link", "set", "eth0", "up")
	for i, name := range podNames {
		pod := newProxyTestNetns(t, prefix, "pod-"+name)
		addr := netip.AddrFrom4([4]byte{10, 244, 1, byte(2 + i)})
		veth := "v" + name
		node.run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.name)
		node.run(t, "ip", "link", "set", veth, "master", "br0", "up")
		pod.run(t, "ip", "addr", "add", addr.String()+"/24", "dev", "eth0")
		pod.run(t, "ip", "link", "set", "eth0", "up")
		pod.run(t, "ip", "route", "add", "default", "via", proxyTestBridge.String())
		tb.pods[name], tb.podAddr[name] = pod, addr
	}
	tb.servers = &proxyTestServers{}
	t.Cleanup(tb.servers.close) // runs before the namespaces are deleted
	for name, pod := range tb.pods {
		tb.servers.serve(t, pod, name)
	}
	return tb
}

// endpoints returns the TCP (or UDP) endpoints of the named instances.
func (tb *proxyTestbed) endpoints(proto Protocol, names ...string) []Endpoint {
	port := uint16(proxyTestTCPPort)
	if proto == ProtocolUDP {
		port = proxyTestUDPPort
	}
	var out []Endpoint
	for _, name := range names {
		out = append(out, Endpoint{Addr: tb.podAddr[name], Port: port})
	}
	return out
}

// proxy starts a Proxy on the node and closes it at cleanup.
func (tb *proxyTestbed) proxy(t testing.TB) *Proxy {
	t.Helper()
	p, err := NewProxy(ProxyConfig{ClusterCIDR: proxyTestCluster, PodSubnet: proxyTestPodSubnet, NetNS: tb.node.path})
	if err != nil {
		t.Fatalf("NewProxy: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// proxyTestServers are the instances' servers: each answers one line, "NAME REMOTE", REMOTE being
// the address:port it sees the client at, on TCP (per connection) and UDP (per datagram).
type proxyTestServers struct {
	mu      sync.Mutex
	closers []func()
	wg      sync.WaitGroup
}

func (s *proxyTestServers) serve(t testing.TB, ns *proxyTestNetns, name string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := ns.do(func() error {
		var err error
		if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", proxyTestTCPPort)); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", proxyTestUDPPort))
		return err
	})
	if err != nil {
		t.Fatalf("serve in %s: %v", ns.name, err)
	}
	s.mu.Lock()
	s.closers = append(s.closers, func() { pc.Close() })
	s.mu.Unlock()
	s.answerTCP(ln, name)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name+" "+from.String()+"\n"), from)
		}
	}()
}

// answerTCP answers every connection to ln with "NAME REMOTE" until the test ends.
func (s *proxyTestServers) answerTCP(ln net.Listener, name string) {
	s.mu.Lock()
	s.closers = append(s.closers, func() { ln.Close() })
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
			c.Close()
		}
	}()
}

// serveTCP serves "NAME REMOTE" on a TCP address inside ns (for the outside world).
func (s *proxyTestServers) serveTCP(t testing.TB, ns *proxyTestNetns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.name, err)
	}
	s.answerTCP(ln, name)
}

func (s *proxyTestServers) close() {
	s.mu.Lock()
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// proxyReply is what a server answered: who it is and where it saw the client.
type proxyReply struct {
	name   string
	remote netip.AddrPort
}

// proxyAsk connects from ns to addr over proto and reads the server's line.
func proxyAsk(ns *proxyTestNetns, proto Protocol, addr netip.AddrPort) (proxyReply, error) {
	network := "tcp4"
	if proto == ProtocolUDP {
		network = "udp4"
	}
	var c net.Conn
	err := ns.do(func() (err error) {
		c, err = net.DialTimeout(network, addr.String(), 2*time.Second)
		return err
	})
	if err != nil {
		return proxyReply{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if proto == ProtocolUDP {
		if _, err := c.Write([]byte("hi")); err != nil {
			return proxyReply{}, err
		}
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return proxyReply{}, err
	}
	name, remote, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return proxyReply{}, fmt.Errorf("bad reply %q", line)
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return proxyReply{}, fmt.Errorf("bad reply %q: %v", line, err)
	}
	return proxyReply{name: name, remote: ap}, nil
}

// proxyAskMany asks n times and counts the answers by server name; it fails the test on any error.
func proxyAskMany(t testing.TB, ns *proxyTestNetns, proto Protocol, addr netip.AddrPort, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		r, err := proxyAsk(ns, proto, addr)
		if err != nil {
			t.Fatalf("%s %v from %s: %v", proto, addr, ns.name, err)
		}
		seen[r.name]++
	}
	return seen
}
