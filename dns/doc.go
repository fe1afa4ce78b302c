// Package dns owns the cluster's name service: every node answers for every Service in the
// cluster domain (default cluster.local) from an immutable Snapshot, forwards other names to
// upstream resolvers, and writes the resolv.conf that containers use.
//
// Following CoreDNS's hosts plugin, parsing is separate from serving: NewSnapshot validates
// the services the agent hands it and builds a read-only index (snapshot.go, pure); the
// Server's ServeDNS answers from whichever Snapshot was last given to Swap, loaded through an
// atomic pointer. The handler never waits on gossip or the agent, and holds a lock only for
// one map operation; the only thing that may wait is forwarding, which is bounded by a
// per-query timeout and by caps on concurrent forwards, in all and per client address, so
// that one container flooding a slow upstream cannot take external DNS from the others
// (over a cap: a stale answer or SERVFAIL at once).
//
// Upstream answers are cached (cache.go), after CoreDNS's cache plugin: fresh for their
// smallest TTL, negative answers for their SOA minimum (RFC 2308), bounded in entries and
// bytes, and served stale with a 30 s TTL for up to Config.MaxStale when no upstream
// answers (RFC 8767). An entry is one upstream's whole answer to one question, stored only
// when the answer echoed the question and the forward's random ID, so records for other
// names in it never answer for those names; cluster names are answered from the snapshot
// before the cache is asked. UDP on a socket bound to one address is read
// by one long-lived goroutine per CPU that answers in place (udp.go), which serves about
// 1.6 times the queries of miekg/dns's goroutine-per-packet server; TCP, and UDP on a
// wildcard socket, use miekg/dns's server.
//
// What is answered, after the Kubernetes DNS specification and CoreDNS's kubernetes plugin:
//
//   - SERVICE.NAMESPACE.svc.DOMAIN A/AAAA: the Service's virtual IP when it has one (with
//     the pod network), whatever is ready behind it, as CoreDNS answers a ClusterIP.
//     Otherwise (headless Services, and every Service under host networking) the distinct
//     addresses of the ready endpoints, rotated one step per query; a non-headless Service
//     without a virtual IP and with no ready endpoint answers NOERROR with no records, a
//     headless one NXDOMAIN, as CoreDNS and kube-dns do (kubernetes/dns#245).
//   - INSTANCE.SERVICE.NAMESPACE.svc.DOMAIN A/AAAA, headless Services only: the ready
//     instance's address.
//   - _PORT._PROTO.SERVICE.NAMESPACE.svc.DOMAIN SRV for named ports: headless, one SRV per
//     ready instance targeting its instance name; otherwise one SRV targeting the Service
//     name (identical records per endpoint would be one RRset entry anyway). The targets'
//     addresses go in the additional section.
//   - PTR for a virtual IP: the Service name. PTR for a ready endpoint address: the
//     instance name for headless Services, the Service name otherwise. Under host networking one address serves many names; the answer is
//     the first in name order, one record, as CoreDNS gives one.
//   - SERVICE.NAMESPACE.svc.DOMAIN of an ExternalName Service, any type: a CNAME to its
//     external name, then (but for a CNAME question) the target's records: from the
//     snapshot when the target is in DOMAIN (at most maxCNAMEChain aliases), else from the
//     upstreams through the cache, as CoreDNS's kubernetes plugin answers (stub resolvers do
//     not chase a CNAME); the CNAME alone without upstreams.
//   - DOMAIN SOA and NS. Any other name in DOMAIN: NXDOMAIN with the SOA; a name that exists
//     without the asked type (or only has names below it): NOERROR/NODATA with the SOA.
//
// Names are matched case-insensitively. Clients outside Config.AllowedNets are REFUSED, so
// the server is never an open resolver. UDP answers larger than the client's buffer (512
// bytes, or its EDNS0 size) are truncated with the TC bit set.
//
// The package imports only github.com/miekg/dns and the standard library; it never reads
// gossip, the planner or containerd — the agent builds Snapshots and calls Swap.
package dns
