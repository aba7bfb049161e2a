package proxy

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Fixed chain and map names inside the table. The shape follows kube-proxy's
// nftables mode:
//
//	nat-prerouting / nat-output  -> services: ClusterIP, LoadBalancer
//	      address and NodePort vmaps
//	svc-*  every endpoint: affinity lookups, then numgen random, goto ep-*
//	lcl-*  the same over this node's endpoints (a Local traffic policy)
//	ep-*   record the client in @affinity, DNAT to the endpoint
//	ext-*  NodePort and LoadBalancer entry: Cluster marks for masquerade
//	       and goes to svc-*; Local keeps the client's address and goes to
//	       lcl-*, or drops, unless the client is a pod or the node itself
//	nat-postrouting -> masquerading: masquerade marked packets
//	filter-{input,forward,output} -> endpoints-check: reject new
//	      connections to service ports without endpoints
//	filter-{prerouting,output} -> firewall-check: drop clients outside a
//	      LoadBalancer's source ranges (fw-*), before DNAT
const (
	chainNATPrerouting    = "nat-prerouting"
	chainNATOutput        = "nat-output"
	chainNATPostrouting   = "nat-postrouting"
	chainFilterPrerouting = "filter-prerouting"
	chainFilterInput      = "filter-input"
	chainFilterForward    = "filter-forward"
	chainFilterOutput     = "filter-output"
	chainServices         = "services"
	chainEndpointsCheck   = "endpoints-check"
	chainFirewallCheck    = "firewall-check"
	chainMarkMasq         = "mark-for-masquerade"
	chainMasquerading     = "masquerading"
	chainReject           = "reject-chain"
	mapServiceIPs         = "service-ips"
	mapServiceNodePorts   = "service-nodeports"
	mapNoEndpointIPs      = "no-endpoint-services"
	mapNoEndpointNodePts  = "no-endpoint-nodeports"
	mapFirewallIPs        = "firewall-ips"
	setAffinity           = "affinity"
)

// affinitySize bounds the clients the affinity set holds, over all service
// ports; the kernel's default for a dynamic set is 65535.
const affinitySize = 1 << 18

// masqMark is the packet mark bit meaning "masquerade in postrouting", the
// same bit kube-proxy uses.
const masqMark = 0x4000

// Filter chains run before DNAT (dstnat = -100), so that they still see the
// ClusterIP as destination; -110 is what kube-proxy uses.
const filterPriority = -110

// Registers: reg 1 is the first 16-byte register, which nft also addresses
// as 32-bit reg 8..11; a concatenation puts its later fields in the 32-bit
// registers that follow (9, 10), each padded to 4 bytes.
const (
	reg1   = unix.NFT_REG_1
	reg2   = unix.NFT_REG_2
	reg32b = unix.NFT_REG32_01
	reg32c = unix.NFT_REG32_02
)

// elemChunk bounds the elements per NEWSETELEM message: its element list is
// one netlink attribute, whose length field is 16 bits.
const elemChunk = 128

var (
	vipKeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	npKeyType  = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
	// client . ClusterIP . port . endpoint address . endpoint port: no
	// protocol (nftables concatenates five types at most), so a Service's
	// TCP and UDP port of one number share a client's entry for an
	// endpoint, which is the same pod either way.
	affinityKeyType = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr,
		nftables.TypeInetService, nftables.TypeIPAddr, nftables.TypeInetService)
)

// renderer writes one full table into a Conn's pending batch.
type renderer struct {
	c     *nftables.Conn
	t     *nftables.Table
	msgs  int
	err   error
	elems int
}

// bufSize estimates the socket buffer one Sync of pl needs, for both the
// batch sent and the acks and rule echoes received: generous per message,
// since the cost of too big is only a limit, not an allocation. kept is
// the affinity entries carried over.
func bufSize(pl *plan, kept int) int {
	msgs := 64 + kept/16
	for _, p := range pl.ports {
		msgs += 8 + 6*len(p.endpoints) + len(p.lbAddrs) + len(p.sourceRanges)
	}
	return 1<<20 + msgs*2048
}

// names are the chains of one service port.
type names struct {
	svc, lcl, ext, fw string
	eps               []string // ep-* chain per endpoint
}

func render(c *nftables.Conn, table string, pl *plan, clusterCIDR netip.Prefix, kept []nftables.SetElement) (int, error) {
	r := &renderer{c: c, t: &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}}

	// Create (no-op if present), delete, create: in one batch this is an
	// atomic replace, with no window in which the table is missing.
	c.AddTable(r.t)
	c.DelTable(r.t)
	c.AddTable(r.t)
	r.msgs += 3

	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio int32) *nftables.Chain {
		return r.chain(&nftables.Chain{Name: name, Table: r.t, Type: typ, Hooknum: hook,
			Priority: nftables.ChainPriorityRef(nftables.ChainPriority(prio))})
	}
	natPre := base(chainNATPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, int32(*nftables.ChainPriorityNATDest))
	natOut := base(chainNATOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, int32(*nftables.ChainPriorityNATDest))
	natPost := base(chainNATPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, int32(*nftables.ChainPriorityNATSource))
	fIn := base(chainFilterInput, nftables.ChainTypeFilter, nftables.ChainHookInput, filterPriority)
	fFwd := base(chainFilterForward, nftables.ChainTypeFilter, nftables.ChainHookForward, filterPriority)
	fOut := base(chainFilterOutput, nftables.ChainTypeFilter, nftables.ChainHookOutput, filterPriority)
	services := r.chain(&nftables.Chain{Name: chainServices, Table: r.t})
	check := r.chain(&nftables.Chain{Name: chainEndpointsCheck, Table: r.t})
	markMasq := r.chain(&nftables.Chain{Name: chainMarkMasq, Table: r.t})
	masq := r.chain(&nftables.Chain{Name: chainMasquerading, Table: r.t})
	reject := r.chain(&nftables.Chain{Name: chainReject, Table: r.t})

	// Per service port chains; all exist before any rule or map element
	// refers to them.
	nm := make([]names, len(pl.ports))
	chain := func(prefix, readable string) string {
		name := chainName(prefix, readable)
		r.chain(&nftables.Chain{Name: name, Table: r.t})
		return name
	}
	for i, p := range pl.ports {
		n := &nm[i]
		if len(p.lbAddrs) > 0 && len(p.sourceRanges) > 0 {
			n.fw = chain("fw", p.key)
		}
		if len(p.endpoints) == 0 {
			continue
		}
		n.svc = chain("svc", p.key)
		if (p.intLocal || p.extLocal) && len(p.local()) > 0 {
			n.lcl = chain("lcl", p.key)
		}
		if p.nodePort != 0 || len(p.lbAddrs) > 0 {
			n.ext = chain("ext", p.key)
		}
		for _, ep := range p.endpoints {
			n.eps = append(n.eps, chain("ep", p.key+"__"+ep.Addr().String()+"/"+strconv.Itoa(int(ep.Port()))))
		}
	}
	var affinity *nftables.Set
	if pl.affinity {
		affinity = r.affinitySet(pl, kept)
	}

	// Verdict maps: the dispatch is one hash lookup however many services.
	var vipElems, npElems, noVIPElems, noNPElems, fwElems []nftables.SetElement
	for i, p := range pl.ports {
		n := &nm[i]
		vk := vipKey(p.clusterIP, p.proto, p.port)
		if n.fw != "" {
			for _, a := range p.lbAddrs {
				fwElems = append(fwElems, vmapElem(vipKey(a, p.proto, p.port), expr.VerdictGoto, n.fw))
			}
		}
		if len(p.endpoints) == 0 {
			// No endpoint anywhere: tell the client now.
			noVIPElems = append(noVIPElems, vmapElem(vk, expr.VerdictGoto, chainReject))
			for _, a := range p.lbAddrs {
				noVIPElems = append(noVIPElems, vmapElem(vipKey(a, p.proto, p.port), expr.VerdictGoto, chainReject))
			}
			if p.nodePort != 0 {
				noNPElems = append(noNPElems, vmapElem(npKey(p.proto, p.nodePort), expr.VerdictGoto, chainReject))
			}
			continue
		}
		switch {
		case !p.intLocal:
			vipElems = append(vipElems, vmapElem(vk, expr.VerdictGoto, n.svc))
		case n.lcl != "":
			vipElems = append(vipElems, vmapElem(vk, expr.VerdictGoto, n.lcl))
		default:
			// Endpoints elsewhere only: dropped, as kube-proxy does.
			noVIPElems = append(noVIPElems, vmapElem(vk, expr.VerdictDrop, ""))
		}
		for _, a := range p.lbAddrs {
			vipElems = append(vipElems, vmapElem(vipKey(a, p.proto, p.port), expr.VerdictGoto, n.ext))
		}
		if p.nodePort != 0 {
			npElems = append(npElems, vmapElem(npKey(p.proto, p.nodePort), expr.VerdictGoto, n.ext))
		}
	}
	vipMap := r.vmap(mapServiceIPs, vipKeyType, vipElems)
	npMap := r.vmap(mapServiceNodePorts, npKeyType, npElems)
	noVIPMap := r.vmap(mapNoEndpointIPs, vipKeyType, noVIPElems)
	noNPMap := r.vmap(mapNoEndpointNodePts, npKeyType, noNPElems)

	// Hooks. Output is hooked as well as prerouting so that connections
	// made by the node itself are proxied too.
	r.rule(natPre, jump(chainServices))
	r.rule(natOut, jump(chainServices))
	r.rule(natPost, jump(chainMasquerading))
	for _, ch := range []*nftables.Chain{fIn, fFwd, fOut} {
		r.rule(ch, ctStateNew(), jump(chainEndpointsCheck))
	}
	if len(fwElems) > 0 {
		fPre := base(chainFilterPrerouting, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, filterPriority)
		fw := r.chain(&nftables.Chain{Name: chainFirewallCheck, Table: r.t})
		fwMap := r.vmap(mapFirewallIPs, vipKeyType, fwElems)
		r.rule(fw, loadDaddr(reg1), loadL4Proto(reg32b), loadDport(reg32c), lookupVerdict(reg1, fwMap))
		for _, ch := range []*nftables.Chain{fPre, fOut} {
			r.rule(ch, ctStateNew(), jump(chainFirewallCheck))
		}
	}

	// services / endpoints-check: ClusterIP by daddr.proto.dport, NodePort
	// by proto.dport on any local address but loopback (a DNAT of 127/8
	// would need route_localnet).
	dispatch := func(ch *nftables.Chain, vips, nps *nftables.Set) {
		r.rule(ch, loadDaddr(reg1), loadL4Proto(reg32b), loadDport(reg32c), lookupVerdict(reg1, vips))
		r.rule(ch, fibAddrLocal(true), notLoopback(), loadL4Proto(reg1), loadDport(reg32b), lookupVerdict(reg1, nps))
	}
	dispatch(services, vipMap, npMap)
	dispatch(check, noVIPMap, noNPMap)

	// Masquerade: mark where the decision is made (NodePort, hairpin,
	// off-cluster source), act in postrouting once the output interface
	// is known. The mark bit is cleared so it does not leak further.
	r.rule(markMasq, setMarkBits(masqMark, true))
	r.rule(masq, loadMark(reg1), testMarkZero(masqMark), verdict(expr.VerdictReturn, ""))
	r.rule(masq, setMarkBits(masqMark, false))
	r.rule(masq, []expr.Any{&expr.Masq{FullyRandom: true}})

	// No endpoints: tell the client now (TCP RST / ICMP port unreachable)
	// instead of letting it time out.
	r.rule(reject, l4proto(unix.IPPROTO_TCP), []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}})
	r.rule(reject, []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3 /* port unreachable */}})

	for i, p := range pl.ports {
		n := nm[i]
		if n.fw != "" {
			fw := &nftables.Chain{Name: n.fw, Table: r.t}
			for _, pfx := range p.sourceRanges {
				r.rule(fw, loadSaddr(reg1), inPrefix(pfx, true), verdict(expr.VerdictReturn, ""))
			}
			r.rule(fw, verdict(expr.VerdictDrop, ""))
		}
		if len(p.endpoints) == 0 {
			continue
		}
		all := make([]int, len(p.endpoints))
		for j := range all {
			all[j] = j
		}
		svc := &nftables.Chain{Name: n.svc, Table: r.t}
		if clusterCIDR.IsValid() {
			r.rule(svc, loadSaddr(reg1), inPrefix(clusterCIDR, false), jump(chainMarkMasq))
		}
		r.pick(svc, &p, n, affinity, all)
		if n.lcl != "" {
			r.pick(&nftables.Chain{Name: n.lcl, Table: r.t}, &p, n, affinity, p.local())
		}
		if n.ext != "" {
			ext := &nftables.Chain{Name: n.ext, Table: r.t}
			if !p.extLocal {
				r.rule(ext, jump(chainMarkMasq))
				r.rule(ext, verdict(expr.VerdictGoto, n.svc))
			} else {
				// Pods and the node itself reach every endpoint, as
				// kube-proxy short-circuits them; the node's own
				// traffic is masqueraded, its source is a local address.
				if clusterCIDR.IsValid() {
					r.rule(ext, loadSaddr(reg1), inPrefix(clusterCIDR, true), verdict(expr.VerdictGoto, n.svc))
				}
				r.rule(ext, fibAddrLocal(false), jump(chainMarkMasq))
				r.rule(ext, fibAddrLocal(false), verdict(expr.VerdictGoto, n.svc))
				if n.lcl != "" {
					r.rule(ext, verdict(expr.VerdictGoto, n.lcl))
				} else {
					r.rule(ext, verdict(expr.VerdictDrop, ""))
				}
			}
		}
		for j, ep := range p.endpoints {
			ch := &nftables.Chain{Name: n.eps[j], Table: r.t}
			// Hairpin: a pod reaching itself through the service would
			// get the reply from its own address, so it must be SNATed.
			r.rule(ch, loadSaddr(reg1), cmpEq(reg1, ep.Addr().AsSlice()), jump(chainMarkMasq))
			if p.affinity > 0 {
				r.rule(ch, affinityKey(&p, ep), []expr.Any{&expr.Dynset{SrcRegKey: reg1, SetName: affinity.Name,
					SetID: affinity.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: p.affinity}})
			}
			r.rule(ch, l4proto(p.proto), []expr.Any{
				&expr.Immediate{Register: reg1, Data: ep.Addr().AsSlice()},
				&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(ep.Port())},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
					RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
			})
		}
	}
	return r.msgs, r.err
}

func (r *renderer) chain(c *nftables.Chain) *nftables.Chain {
	r.msgs++
	return r.c.AddChain(c)
}

// rule appends a rule made of the concatenated expression parts.
func (r *renderer) rule(c *nftables.Chain, parts ...[]expr.Any) {
	r.msgs++
	r.c.AddRule(&nftables.Rule{Table: r.t, Chain: c, Exprs: concat(parts...)})
}

func (r *renderer) setErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

// vmap adds a named verdict map and its elements, in chunks.
func (r *renderer) vmap(name string, key nftables.SetDatatype, elems []nftables.SetElement) *nftables.Set {
	s := &nftables.Set{Table: r.t, Name: name, IsMap: true, Concatenation: true,
		KeyType: key, DataType: nftables.TypeVerdict}
	r.msgs++
	if err := r.c.AddSet(s, nil); err != nil {
		r.setErr(err)
		return s
	}
	r.addElements(s, elems)
	return s
}

// addElements adds elems to s in chunks.
func (r *renderer) addElements(s *nftables.Set, elems []nftables.SetElement) {
	for len(elems) > 0 {
		n := min(len(elems), elemChunk)
		r.msgs++
		r.elems += n
		if err := r.c.SetAddElements(s, elems[:n]); err != nil {
			r.setErr(err)
		}
		elems = elems[n:]
	}
}

// pick sends a client with affinity back to its endpoint, and picks one of
// eps (indexes into p.endpoints) for the rest: `numgen random mod N vmap
// { 0 : goto ep0, ... }`, one random number per new connection looked up
// in an anonymous constant map, or goto the one endpoint there is.
func (r *renderer) pick(c *nftables.Chain, p *svcPort, n names, affinity *nftables.Set, eps []int) {
	for _, ep := range eps {
		if p.affinity > 0 {
			r.rule(c, affinityKey(p, p.endpoints[ep]),
				[]expr.Any{&expr.Lookup{SourceRegister: reg1, SetName: affinity.Name, SetID: affinity.ID}},
				verdict(expr.VerdictGoto, n.eps[ep]))
		}
	}
	if len(eps) == 1 {
		// No choice to make: a set costs the kernel more than a rule.
		r.rule(c, verdict(expr.VerdictGoto, n.eps[eps[0]]))
		return
	}
	elems := make([]nftables.SetElement, len(eps))
	for i, ep := range eps {
		elems[i] = vmapElem(binaryutil.BigEndian.PutUint32(uint32(i)), expr.VerdictGoto, n.eps[ep])
	}
	s := &nftables.Set{Table: r.t, Anonymous: true, Constant: true, IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeVerdict}
	r.msgs += 2
	if err := r.c.AddSet(s, elems); err != nil {
		r.setErr(err)
		return
	}
	r.rule(c,
		[]expr.Any{
			&expr.Numgen{Register: reg1, Modulus: uint32(len(eps)), Type: unix.NFT_NG_RANDOM},
			&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		},
		lookupVerdict(reg1, s))
}

// affinitySet adds the one set of the clients every endpoint with
// affinity has had, each entry kept for its Service's timeout after the
// client's last new connection, and refills it with the entries kept from
// the table this one replaces whose endpoints are still there. One set for
// all, not one per endpoint as kube-proxy has: the table is replaced whole
// at every Sync, and the kernel takes about a millisecond to free each
// set with timeouts.
func (r *renderer) affinitySet(pl *plan, kept []nftables.SetElement) *nftables.Set {
	s := &nftables.Set{Table: r.t, Name: setAffinity, KeyType: affinityKeyType, Concatenation: true,
		HasTimeout: true, Dynamic: true, Size: affinitySize}
	r.msgs++
	if err := r.c.AddSet(s, nil); err != nil {
		r.setErr(err)
		return s
	}
	live := map[string]bool{}
	for i := range pl.ports {
		p := &pl.ports[i]
		if p.affinity > 0 {
			for _, ep := range p.endpoints {
				live[string(affinityTail(p, ep))] = true
			}
		}
	}
	r.addElements(s, slices.DeleteFunc(kept, func(e nftables.SetElement) bool {
		return len(e.Key) < 4 || !live[string(e.Key[4:])]
	}))
	return s
}

// affinityTail is an affinity key without its client: ClusterIP, port,
// endpoint address and port, each field padded to 4 bytes.
func affinityTail(p *svcPort, ep endpoint) []byte {
	k := make([]byte, 16)
	vip, addr := p.clusterIP.As4(), ep.Addr().As4()
	copy(k[0:4], vip[:])
	binary.BigEndian.PutUint16(k[4:6], p.port)
	copy(k[8:12], addr[:])
	binary.BigEndian.PutUint16(k[12:14], ep.Port())
	return k
}

// affinityKey loads the affinity key of the packet's client and ep into
// the registers from reg1 on, a field each, as nft writes (and can list)
// `ip saddr . 10.96.0.10 . 80 . 10.244.1.5 . 8080`.
func affinityKey(p *svcPort, ep endpoint) []expr.Any {
	tail := affinityTail(p, ep)
	return concat(loadSaddr(reg1), []expr.Any{
		&expr.Immediate{Register: reg32b, Data: tail[0:4]},
		&expr.Immediate{Register: reg32b + 1, Data: tail[4:6]},
		&expr.Immediate{Register: reg32b + 2, Data: tail[8:12]},
		&expr.Immediate{Register: reg32b + 3, Data: tail[12:14]},
	})
}

func vmapElem(key []byte, kind expr.VerdictKind, chain string) nftables.SetElement {
	return nftables.SetElement{Key: key, VerdictData: &expr.Verdict{Kind: kind, Chain: chain}}
}

// vipKey is ipv4_addr . inet_proto . inet_service, each field padded to a
// 4-byte register as the kernel lays out concatenations.
func vipKey(ip netip.Addr, proto uint8, port uint16) []byte {
	k := make([]byte, 12)
	a := ip.As4()
	copy(k[0:4], a[:])
	k[4] = proto
	binary.BigEndian.PutUint16(k[8:10], port)
	return k
}

// npKey is inet_proto . inet_service.
func npKey(proto uint8, port uint16) []byte {
	k := make([]byte, 8)
	k[0] = proto
	binary.BigEndian.PutUint16(k[4:6], port)
	return k
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func jump(chain string) []expr.Any { return verdict(expr.VerdictJump, chain) }

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

func loadDaddr(reg uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4}}
}

func loadSaddr(reg uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4}}
}

func loadL4Proto(reg uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}}
}

// loadDport is `th dport`: both TCP and UDP keep it at offset 2.
func loadDport(reg uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
}

func loadMark(reg uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: reg}}
}

func lookupVerdict(reg uint32, s *nftables.Set) []expr.Any {
	return []expr.Any{&expr.Lookup{SourceRegister: reg, SetName: s.Name, SetID: s.ID, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT}}
}

func cmpEq(reg uint32, data []byte) []expr.Any {
	return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}}
}

// l4proto is `meta l4proto <proto>`.
func l4proto(proto uint8) []expr.Any {
	return concat(loadL4Proto(reg1), cmpEq(reg1, []byte{proto}))
}

// fibAddrLocal is `fib daddr type local` (or saddr): an address of this
// node, so NodePorts follow address changes without a resync.
func fibAddrLocal(daddr bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: reg1, FlagDADDR: daddr, FlagSADDR: !daddr, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// notLoopback is `ip daddr != 127.0.0.0/8`.
func notLoopback() []expr.Any {
	return concat(loadDaddr(reg1), inPrefix(netip.MustParsePrefix("127.0.0.0/8"), false))
}

// inPrefix tests that reg1 (an IPv4 address) is inside pfx, or outside it.
func inPrefix(pfx netip.Prefix, inside bool) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-pfx.Bits()))
	op := expr.CmpOpEq
	if !inside {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: reg1, Data: pfx.Masked().Addr().AsSlice()},
	}
}

// ctStateNew is `ct state new`: the filter checks only need to see the
// first packet of a connection.
func ctStateNew() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitNEW), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: make([]byte, 4)},
	}
}

// testMarkZero is `meta mark & bits == 0` on reg1.
func testMarkZero(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: make([]byte, 4)},
	}
}

// setMarkBits is `meta mark set meta mark | bits` (set) or `^ bits`
// (clear, used only once the bit is known to be set).
func setMarkBits(bits uint32, set bool) []expr.Any {
	mask := ^bits
	if !set {
		mask = ^uint32(0)
	}
	return concat(loadMark(reg1), []expr.Any{
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(bits)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg1},
	})
}
