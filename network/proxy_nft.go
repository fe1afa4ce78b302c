package network

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// proxyMasqueradeMark is the packet mark bit that asks the masquerading chain to
// masquerade a packet: kube-proxy's default, so that both agree if they ever share a node.
// The mark lives on the packet only between the service chains and postrouting.
const proxyMasqueradeMark uint32 = 0x4000

// proxyCtStatusDNAT is IPS_DST_NAT, the conntrack status bit of a destination-NATed
// connection.
const proxyCtStatusDNAT uint32 = 1 << 5

// proxySocketBuffer is the netlink socket's send and receive buffer, forced past the
// system's limits: a whole-table transaction goes out as one message, 8 to 16 MB at the
// MaxProxy limits (the kernel doubles the value set). The sizes are limits, not allocations.
const proxySocketBuffer = 32 << 20

// proxyElemChunk is how many map elements go in one netlink message: with comments of at
// most maxProxyComment bytes, well within the 64 KiB an attribute can hold.
const proxyElemChunk = 128

// Registers (nftables numbering): the verdict register, the first 128-bit data register,
// and the 32-bit registers that follow its first word, for concatenated keys.
const (
	nftRegVerdict = 0
	nftReg1       = 1
	nftReg32b     = 9  // second 32-bit word of reg1
	nftReg32c     = 10 // third 32-bit word of reg1
	nftReg32d     = 11 // fourth 32-bit word of reg1
)

// connect opens the lasting netlink connection into the proxy's namespace.
func (p *Proxy) connect() error {
	conn, err := nftables.New(
		nftables.AsLasting(),
		nftables.WithNetNSFd(int(p.netns.Fd())),
		nftables.WithSockOptions(forceProxyBuffers),
	)
	if err != nil {
		return fmt.Errorf("network: proxy: netlink: %w", err)
	}
	p.conn = conn
	return nil
}

// reconnect replaces the connection after a failed transaction, whose unread answers
// would otherwise be taken for the next one's.
func (p *Proxy) reconnect() {
	_ = p.conn.CloseLasting()
	p.conn = nil
	if err := p.connect(); err != nil {
		p.log.Warn("proxy reconnect failed; retrying at next sync", "err", err)
	}
}

// forceProxyBuffers sets the socket's buffers to proxySocketBuffer (SO_*BUFFORCE needs
// CAP_NET_ADMIN, which programming nftables needs anyway).
func forceProxyBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, proxySocketBuffer)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, proxySocketBuffer)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

func (p *Proxy) table() *nftables.Table {
	return &nftables.Table{Name: p.cfg.Table, Family: nftables.TableFamilyIPv4}
}

// tableExists asks the kernel whether the proxy's table is there.
func (p *Proxy) tableExists() (bool, error) {
	if p.conn == nil {
		if err := p.connect(); err != nil {
			return false, err
		}
	}
	tables, err := p.conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		p.reconnect()
		return false, fmt.Errorf("network: proxy: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == p.cfg.Table {
			return true, nil
		}
	}
	return false, nil
}

// apply writes t to the kernel as one transaction.
func (p *Proxy) apply(t *proxyTxn) error {
	if p.conn == nil {
		if err := p.connect(); err != nil {
			return err
		}
	}
	w := &proxyWriter{p: p, c: p.conn, t: p.table()}
	if err := w.write(t); err != nil {
		p.reconnect() // drop what was queued
		return err
	}
	if err := p.conn.Flush(); err != nil {
		p.reconnect()
		return err
	}
	if t.full {
		clear(p.sizes)
	}
	for _, n := range t.sizes {
		p.sizes[n] = true
	}
	return nil
}

// proxyWriter turns a proxyTxn into messages on one connection.
type proxyWriter struct {
	p *Proxy
	c *nftables.Conn
	t *nftables.Table
}

func (w *proxyWriter) chain(name string) *nftables.Chain {
	return &nftables.Chain{Table: w.t, Name: name}
}

func (w *proxyWriter) rule(chain string, exprs ...expr.Any) {
	w.c.AddRule(&nftables.Rule{Table: w.t, Chain: w.chain(chain), Exprs: exprs})
}

func (w *proxyWriter) write(t *proxyTxn) error {
	if t.full {
		// Add first so that the delete finds a table whether or not there was one.
		w.c.AddTable(w.t)
		w.c.DelTable(w.t)
		w.c.AddTable(w.t)
		if err := w.skeleton(); err != nil {
			return err
		}
	}
	for _, n := range t.sizes {
		w.spreadChains(n)
	}
	if err := w.elems(t.del, w.c.SetDeleteElements); err != nil {
		return err
	}
	return w.elems(t.add, w.c.SetAddElements)
}

// spreadChains writes spread-n and external-n, which DNAT to one of n endpoints at random:
//
//	spread-n   { ip saddr != ClusterCIDR jump mark-for-masquerade
//	             dnat ip to ip daddr . meta l4proto . th dport . numgen random mod n map @service-endpoints }
//	external-n { jump mark-for-masquerade
//	             dnat ip to meta l4proto . th dport . numgen random mod n map @nodeport-endpoints }
func (w *proxyWriter) spreadChains(n int) {
	spread, external := proxySpreadChain(n), proxyExternalChain(n)
	w.c.AddChain(w.chain(spread))
	w.c.AddChain(w.chain(external))
	w.rule(spread, append(nftMatchPrefix(nftLoadSaddr(), w.p.cfg.ClusterCIDR, expr.CmpOpNeq), nftJump(proxyMarkMasqChain))...)
	w.rule(spread,
		nftLoadDaddr(nftReg1),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg32b},
		nftLoadDport(nftReg32c),
		&expr.Numgen{Register: nftReg32d, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: nftReg1, DestRegister: nftReg1, IsDestRegSet: true, SetName: proxyServiceEndpointsMap},
		proxyDNAT(),
	)
	w.rule(external, nftJump(proxyMarkMasqChain))
	w.rule(external,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg1},
		nftLoadDport(nftReg32b),
		&expr.Numgen{Register: nftReg32c, Modulus: uint32(n), Type: unix.NFT_NG_RANDOM},
		&expr.Lookup{SourceRegister: nftReg1, DestRegister: nftReg1, IsDestRegSet: true, SetName: proxyNodePortEndpointsMap},
		proxyDNAT(),
	)
}

// proxyDNAT DNATs to the address in the first word of reg1 and the port in the
// second, where an endpoints map lookup leaves them.
func proxyDNAT() *expr.NAT {
	return &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
		RegAddrMin: nftReg1, RegProtoMin: nftReg32b, Specified: true}
}

// proxySets describes the table's maps and sets by name.
var proxySets = map[string]struct {
	key  nftables.SetDatatype
	data nftables.SetDatatype // verdict or endpoint maps; zero for sets
}{
	proxyServiceIPsMap:        {proxyVIPKeyType, nftables.TypeVerdict},
	proxyServiceNodePortsMap:  {proxyNodePortKeyType, nftables.TypeVerdict},
	proxyServiceEndpointsMap:  {nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark), proxyEndpointType},
	proxyNodePortEndpointsMap: {nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeMark), proxyEndpointType},
	proxyNoEndpointServices:   {proxyVIPKeyType, nftables.SetDatatype{}},
	proxyNoEndpointNodePorts:  {proxyNodePortKeyType, nftables.SetDatatype{}},
}

var (
	proxyVIPKeyType      = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	proxyNodePortKeyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	proxyEndpointType    = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
)

// setRef names an existing map or set, for element updates.
func (w *proxyWriter) setRef(name string) *nftables.Set {
	return &nftables.Set{Table: w.t, Name: name, IsMap: proxySets[name].data.Name != ""}
}

// elems adds or deletes (op) elements, grouped by map or set, proxyElemChunk per message.
func (w *proxyWriter) elems(elems []proxyElem, op func(*nftables.Set, []nftables.SetElement) error) error {
	bySet := map[string][]nftables.SetElement{}
	var order []string
	for _, e := range elems {
		if _, ok := bySet[e.key.set]; !ok {
			order = append(order, e.key.set)
		}
		bySet[e.key.set] = append(bySet[e.key.set], proxySetElement(e))
	}
	for _, set := range order {
		all := bySet[set]
		for len(all) > 0 {
			n := min(len(all), proxyElemChunk)
			if err := op(w.setRef(set), all[:n]); err != nil {
				return err
			}
			all = all[n:]
		}
	}
	return nil
}

// proxySetElement encodes an element as the kernel compares it: each field of a
// concatenation padded to 32 bits, addresses, protocols and ports in network order, the
// slot in host order (as numgen writes it).
func proxySetElement(e proxyElem) nftables.SetElement {
	var key []byte
	if k := e.key.vip; k.vip.IsValid() {
		a := k.vip.As4()
		key = append(key, a[:]...)
	}
	key = append(key, proxyProtoNumber(e.key.vip.proto), 0, 0, 0)
	key = append(key, byte(e.key.vip.port>>8), byte(e.key.vip.port), 0, 0)
	if e.key.set == proxyServiceEndpointsMap || e.key.set == proxyNodePortEndpointsMap {
		key = append(key, binaryutil.NativeEndian.PutUint32(e.key.slot)...)
	}
	el := nftables.SetElement{Key: key, Comment: e.val.comment}
	switch {
	case e.val.to != "":
		el.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.val.to}
	case e.val.ep.Addr.IsValid():
		a := e.val.ep.Addr.As4()
		el.Val = append(a[:], byte(e.val.ep.Port>>8), byte(e.val.ep.Port), 0, 0)
	}
	return el
}

func proxyProtoNumber(p Protocol) byte {
	if p == ProtocolUDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// skeleton writes the fixed part of the table: maps, hooked chains and their rules.
func (w *proxyWriter) skeleton() error {
	for _, name := range slices.Sorted(maps.Keys(proxySets)) {
		desc := proxySets[name]
		w.p.setID++
		set := &nftables.Set{Table: w.t, Name: name, ID: w.p.setID, Concatenation: true,
			KeyType: desc.key, KeyByteOrder: binaryutil.BigEndian}
		if desc.data.Name != "" {
			set.IsMap, set.DataType = true, desc.data
		}
		if err := w.c.AddSet(set, nil); err != nil {
			return err
		}
	}

	for _, name := range []string{proxyServicesChain, proxyEndpointsCheckChain, proxyRejectChain,
		proxyMarkMasqChain, proxyMasqueradingChain} {
		w.c.AddChain(w.chain(name))
	}
	hooked := []struct {
		name     string
		kind     nftables.ChainType
		hook     *nftables.ChainHook
		priority nftables.ChainPriority
		jumpTo   []expr.Any
	}{
		// DNAT where kube-proxy does it: prerouting for traffic arriving (from instances
		// and other hosts), output for the node's own.
		{"nat-prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, -100, []expr.Any{nftJump(proxyServicesChain)}},
		{"nat-output", nftables.ChainTypeNAT, nftables.ChainHookOutput, -100, []expr.Any{nftJump(proxyServicesChain)}},
		{"nat-postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, 100, []expr.Any{nftJump(proxyMasqueradingChain)}},
		// Reject where reject is allowed on every kernel: input, forward and output, before
		// DNAT's priority (a VIP with endpoints is not in the no-endpoint maps anyway).
		{"filter-input", nftables.ChainTypeFilter, nftables.ChainHookInput, -110, nftCtNewJump(proxyEndpointsCheckChain)},
		{"filter-forward", nftables.ChainTypeFilter, nftables.ChainHookForward, -110, nftCtNewJump(proxyEndpointsCheckChain)},
		{"filter-output", nftables.ChainTypeFilter, nftables.ChainHookOutput, -110, nftCtNewJump(proxyEndpointsCheckChain)},
	}
	accept := nftables.ChainPolicyAccept
	for _, h := range hooked {
		priority := h.priority
		w.c.AddChain(&nftables.Chain{Table: w.t, Name: h.name, Type: h.kind, Hooknum: h.hook,
			Priority: &priority, Policy: &accept})
		w.rule(h.name, h.jumpTo...)
	}

	// services: ip daddr . meta l4proto . th dport vmap @service-ips, then the same by
	// NodePort for local destinations; endpoints-check: the same keys in the no-endpoint
	// sets goto reject.
	w.rule(proxyServicesChain, append(proxyMatchVIPKey(),
		&expr.Lookup{SourceRegister: nftReg1, DestRegister: nftRegVerdict, IsDestRegSet: true, SetName: proxyServiceIPsMap})...)
	w.rule(proxyServicesChain, append(proxyMatchNodePortKey(),
		&expr.Lookup{SourceRegister: nftReg1, DestRegister: nftRegVerdict, IsDestRegSet: true, SetName: proxyServiceNodePortsMap})...)
	w.rule(proxyEndpointsCheckChain, append(proxyMatchVIPKey(),
		&expr.Lookup{SourceRegister: nftReg1, SetName: proxyNoEndpointServices},
		&expr.Verdict{Kind: expr.VerdictGoto, Chain: proxyRejectChain})...)
	w.rule(proxyEndpointsCheckChain, append(proxyMatchNodePortKey(),
		&expr.Lookup{SourceRegister: nftReg1, SetName: proxyNoEndpointNodePorts},
		&expr.Verdict{Kind: expr.VerdictGoto, Chain: proxyRejectChain})...)

	w.rule(proxyRejectChain,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Reject{Type: unix.NFT_REJECT_TCP_RST},
	)
	w.rule(proxyRejectChain, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3}) // port unreachable

	// meta mark set meta mark | proxyMasqueradeMark
	w.rule(proxyMarkMasqChain,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: nftReg1},
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^proxyMasqueradeMark),
			Xor:  binaryutil.NativeEndian.PutUint32(proxyMasqueradeMark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: nftReg1},
	)

	// Masquerade keeps the client's source port when it is free, as the client's own stack
	// chose it to avoid its recent connections. kube-proxy asks for fully random ports (for
	// an old kernel race); measured here, random ports soon land on ports the endpoint
	// still holds in TIME_WAIT from earlier connections of the same masquerade address, and
	// one new connection in ~1,000 then waited a second for its SYN to be sent again.
	masq := &expr.Masq{}
	// Marked by a service or external chain: clear the mark, masquerade.
	w.rule(proxyMasqueradingChain,
		&expr.Meta{Key: expr.MetaKeyMARK, Register: nftReg1},
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(proxyMasqueradeMark), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nftReg1, Data: make([]byte, 4)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: nftReg1},
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^proxyMasqueradeMark), Xor: make([]byte, 4)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: nftReg1},
		masq,
	)
	// Service traffic from an instance of this node to one of this node (itself included):
	// the reply must come back through the node to be un-NATed, not straight across the
	// bridge (which needs no br_netfilter this way).
	podSubnet := w.p.cfg.PodSubnet
	rule := []expr.Any{
		&expr.Ct{Register: nftReg1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(proxyCtStatusDNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nftReg1, Data: make([]byte, 4)},
	}
	rule = append(rule, nftMatchPrefix(nftLoadSaddr(), podSubnet, expr.CmpOpEq)...)
	rule = append(rule, nftMatchPrefix(nftLoadDaddr(nftReg1), podSubnet, expr.CmpOpEq)...)
	w.rule(proxyMasqueradingChain, append(rule, masq)...)
	// Pod egress: from the cluster CIDR to outside it.
	cluster := w.p.cfg.ClusterCIDR
	rule = append(nftMatchPrefix(nftLoadSaddr(), cluster, expr.CmpOpEq), nftMatchPrefix(nftLoadDaddr(nftReg1), cluster, expr.CmpOpNeq)...)
	w.rule(proxyMasqueradingChain, append(rule, masq)...)
	return nil
}

// proxyMatchVIPKey loads ip daddr . meta l4proto . th dport into reg1 for a lookup.
func proxyMatchVIPKey() []expr.Any {
	return []expr.Any{
		nftLoadDaddr(nftReg1),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg32b},
		nftLoadDport(nftReg32c),
	}
}

// proxyMatchNodePortKey matches a local destination other than loopback (fib daddr type local
// ip daddr != 127.0.0.0/8) and loads meta l4proto . th dport into reg1 for a lookup.
func proxyMatchNodePortKey() []expr.Any {
	rule := []expr.Any{
		&expr.Fib{Register: nftReg1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: nftReg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
	rule = append(rule, nftMatchPrefix(nftLoadDaddr(nftReg1), netip.MustParsePrefix("127.0.0.0/8"), expr.CmpOpNeq)...)
	return append(rule,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: nftReg1},
		nftLoadDport(nftReg32b),
	)
}

// nftJump is jump chain.
func nftJump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

// nftCtNewJump is ct state new jump chain.
func nftCtNewJump(chain string) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: nftReg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: nftReg1, Data: make([]byte, 4)},
		nftJump(chain),
	}
}

// nftLoadSaddr, nftLoadDaddr and nftLoadDport load ip saddr (into reg1), ip daddr and th
// dport (into reg).
func nftLoadSaddr() *expr.Payload {
	return &expr.Payload{DestRegister: nftReg1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}
}

func nftLoadDaddr(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}
}

func nftLoadDport(reg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

// nftMatchPrefix compares the address load puts in reg1 with prefix: op is CmpOpEq for
// "inside", CmpOpNeq for "outside".
func nftMatchPrefix(load *expr.Payload, prefix netip.Prefix, op expr.CmpOp) []expr.Any {
	mask := netip.PrefixFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), prefix.Bits()).Masked().Addr().As4()
	addr := prefix.Masked().Addr().As4()
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: nftReg1, DestRegister: nftReg1, Len: 4, Mask: mask[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: nftReg1, Data: addr[:]},
	}
}
