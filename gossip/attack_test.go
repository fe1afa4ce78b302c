package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/shoalhq/shoal/identity"
	"github.com/shoalhq/shoal/internal/testsupport"
)

// The tests in this file reproduce attacks by a member that holds the gossip
// key (and, unless said otherwise, a valid certificate for its own name,
// "rogue"): each must fail. The rogue is a bare memberlist node whose delegate
// sends whatever the test makes, as a modified Shoal binary could.

// rogue is an attacker's memberlist node on loopback.
type rogue struct {
	ml   *memberlist.Memberlist
	id   *identity.Identity
	addr string

	mu    sync.Mutex
	meta  []byte
	state []byte // what LocalState sends in push/pull
}

func (r *rogue) NodeMeta(int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meta
}
func (r *rogue) NotifyMsg([]byte)                           {}
func (r *rogue) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (r *rogue) MergeRemoteState([]byte, bool)              {}
func (r *rogue) LocalState(bool) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// startRogue starts a rogue named name holding the gossip key and id's
// certificate, announcing meta (sealed by id for its real address).
func startRogue(t *testing.T, name string, id *identity.Identity, meta Meta, configure func(*memberlist.Config)) *rogue {
	t.Helper()
	port := testsupport.FreePort(t)
	r := &rogue{id: id, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	r.meta = seal(id, name, encodeMetaBody(nodeMeta{Epoch: time.Now().UnixNano(), Seq: 1, GossipAddr: r.addr, Meta: meta}))
	r.state = encodeState([][]byte{id.DER}, nil)
	mlc := memberlist.DefaultLANConfig()
	mlc.Name, mlc.BindAddr, mlc.BindPort, mlc.AdvertisePort = name, "127.0.0.1", port, port
	keyring, err := memberlist.NewKeyring(nil, testKey)
	if err != nil {
		t.Fatal(err)
	}
	mlc.Keyring, mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = keyring, true, true
	mlc.Delegate = r
	mlc.EnableCompression = false
	mlc.LogOutput = nil
	mlc.Logger = log.New(bytes.NewBuffer(nil), "", 0)
	if configure != nil {
		configure(mlc)
	}
	if r.ml, err = memberlist.Create(mlc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ml.Shutdown() })
	return r
}

func (r *rogue) setState(certs [][]byte, blobs ...[]byte) {
	r.mu.Lock()
	r.state = encodeState(certs, blobs)
	r.mu.Unlock()
}

// pushTo makes victim merge the rogue's state (a join is a push/pull).
func (r *rogue) pushTo(t *testing.T, victim *Cluster) error {
	t.Helper()
	_, err := r.ml.Join([]string{victim.Addr()})
	return err
}

// sendTo sends msg to victim as a gossip user message.
func (r *rogue) sendTo(t *testing.T, victim *Cluster, msg []byte) {
	t.Helper()
	ip, portStr, _ := net.SplitHostPort(victim.Addr())
	port, _ := strconv.Atoi(portStr)
	node := &memberlist.Node{Name: victim.cfg.NodeName, Addr: net.ParseIP(ip), Port: uint16(port)}
	if err := r.ml.SendBestEffort(node, msg); err != nil {
		t.Fatal(err)
	}
}

// ownDelta is a delta the rogue may legitimately send: about itself. Tests
// send one after an attack and wait until the victim shows it, so that the
// victim has certainly handled the attack before the test checks.
func (r *rogue) ownDelta(epoch int64, counter uint64, id string) []byte {
	return seal(r.id, "rogue", encodeDeltaBody(delta{Owner: "rogue", Epoch: epoch, Record: record{Counter: counter,
		Info: InstanceInfo{ID: id, Namespace: "default", Workload: "marker", Running: true, Ready: true, Addr: "10.9.9.9"}}}))
}

// victimCluster is two honest nodes; node1 runs web-000 at 10.0.0.1, and a
// rogue member with a valid certificate for "rogue" has joined them.
func victimCluster(t *testing.T) (node0, node1 *Cluster, r *rogue, rogueEpoch int64) {
	nodes := startCluster(t, 2, nil)
	node0, node1 = nodes[0], nodes[1]
	web := instances(1, "web")
	web[0].Addr = "10.0.0.1"
	if err := node1.SetInstances(web); err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1's web-000", func(v View) bool { return len(instancesOf(v, "node1")) == 1 })
	r = startRogue(t, "rogue", clusterCA.id("rogue"), Meta{Labels: map[string]string{"kubernetes.io/hostname": "rogue"}}, nil)
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	v := waitFor(t, node0, "the rogue as a member", func(v View) bool { n, ok := node(v, "rogue"); return ok && n.Alive })
	_ = v
	nm, _, _ := decodeMeta(r.meta)
	return node0, node1, r, nm.Epoch
}

// markerSeen sends the rogue's own delta and waits until victim shows it.
func markerSeen(t *testing.T, r *rogue, victim *Cluster, epoch int64, counter uint64) {
	t.Helper()
	id := fmt.Sprint("marker-", counter)
	r.sendTo(t, victim, r.ownDelta(epoch, counter, id))
	waitFor(t, victim, "the rogue's marker "+id, func(v View) bool {
		for _, in := range instancesOf(v, "rogue") {
			if in.ID == id {
				return true
			}
		}
		return false
	})
}

// node1Web is node1's web-000 as victim sees it.
func node1Web(t *testing.T, victim *Cluster) InstanceInfo {
	t.Helper()
	got := instancesOf(victim.Snapshot(), "node1")
	if len(got) != 1 {
		t.Fatalf("node1's instances on %s: %+v, want web-000 alone", victim.cfg.NodeName, got)
	}
	return got[0]
}

// TestAttackForgedInstanceClaim: the rogue claims node1's instance web-000
// with its own address, as a newer delta from node1, signed with its own key
// (and once more with node1's certificate fingerprint). Base main applied it:
// DNS answered the rogue's address and the real instance was stopped as a
// duplicate.
func TestAttackForgedInstanceClaim(t *testing.T) {
	node0, node1, r, rogueEpoch := victimCluster(t)
	forged := delta{Owner: "node1", Epoch: node1.epoch, Record: record{Counter: 1 << 40,
		Info: InstanceInfo{ID: "web-000", Namespace: "default", Workload: "web", SpecHash: "5eed", Running: true, Ready: true, Addr: "10.6.6.6"}}}
	ownKey := seal(r.id, "node1", encodeDeltaBody(forged))
	node1Print := clusterCA.id("node1").Fingerprint()
	borrowed := append(encodeDeltaBody(forged), node1Print[:]...)
	borrowed = append(borrowed, r.id.Sign(sigInput("node1", encodeDeltaBody(forged)))...)
	for _, msg := range [][]byte{ownKey, borrowed} {
		r.sendTo(t, node0, msg)
	}
	// And relayed in push/pull.
	r.setState([][]byte{r.id.DER}, ownKey, borrowed)
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	markerSeen(t, r, node0, rogueEpoch, 1)
	if got := node1Web(t, node0); got.Addr != "10.0.0.1" {
		t.Fatalf("forged claim applied: node0 sees node1's web-000 at %s", got.Addr)
	}
	if node0.rejected.Load() < 4 {
		t.Fatalf("node0 rejected %d messages, want the 4 forgeries", node0.rejected.Load())
	}
}

// TestAttackRelayedEraseWithMaxFloor: the rogue relays a snapshot "of node1"
// with no records and floor 2^64-1. Base main applied it, and node1's
// instances left every other node's DNS until node1 restarted.
func TestAttackRelayedEraseWithMaxFloor(t *testing.T) {
	node0, node1, r, rogueEpoch := victimCluster(t)
	erase := ownerState{Owner: "node1", Epoch: node1.epoch, Floor: math.MaxUint64}
	r.setState([][]byte{r.id.DER}, seal(r.id, "node1", encodeSnapshotBody(erase)))
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	markerSeen(t, r, node0, rogueEpoch, 1)
	node1Web(t, node0)
	// node1's own instance changes still apply: the floor did not move.
	web := instances(2, "web")
	if err := node1.SetInstances(web); err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1's 2 instances", func(v View) bool { return len(instancesOf(v, "node1")) == 2 })
}

// TestAttackForgedLabelsAndCapacity: the rogue announces itself with
// kubernetes.io/hostname=node1 and 1 PiB of CPU and memory, so that
// node-selected workloads and everything else would be placed on it. Base
// main listed it so.
func TestAttackForgedLabelsAndCapacity(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	for _, m := range []Meta{
		{Labels: map[string]string{"kubernetes.io/hostname": "node1"}, MilliCPU: 1000},
		{Labels: map[string]string{"kubernetes.io/hostname": "rogue"}, MilliCPU: 1 << 50 * 1000, MemoryBytes: 1 << 50},
	} {
		r := startRogue(t, "rogue", clusterCA.id("rogue"), m, nil)
		if err := r.pushTo(t, nodes[0]); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if n, ok := node(nodes[0].Snapshot(), "rogue"); ok {
				t.Fatalf("rogue listed with forged metadata: %+v", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		r.ml.Shutdown()
	}
	for _, m := range []Meta{
		{Labels: map[string]string{"kubernetes.io/hostname": "node1"}},
		{MilliCPU: 1 << 50 * 1000},
		{MemoryBytes: 1 << 50},
	} {
		if err := checkMeta("rogue", m); !errors.Is(err, ErrBadMeta) {
			t.Errorf("checkMeta(%+v) = %v, want ErrBadMeta", m, err)
		}
	}
}

// TestAttackForgedNodeMeta: alive messages about node1 that node1 did not
// sign (signed by the rogue, with node1's fingerprint but the rogue's
// signature, announced at the rogue's address, or a replay of node1's older
// metadata) are refused and change nothing. On base main any member could
// announce any metadata for node1.
func TestAttackForgedNodeMeta(t *testing.T) {
	node0, node1, _, _ := victimCluster(t)
	if err := node1.UpdateNode(Meta{Labels: map[string]string{"kubernetes.io/hostname": "node1", "zone": "a"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1 in zone a", func(v View) bool { n, _ := node(v, "node1"); return n.Labels["zone"] == "a" })
	old := node1Meta(t, node0)

	rogueID := clusterCA.id("rogue")
	forgedMeta := nodeMeta{Epoch: node1.epoch, Seq: 99, GossipAddr: node1.Addr(), Meta: Meta{Labels: map[string]string{"kubernetes.io/hostname": "node1", "zone": "evil"}}}
	body := encodeMetaBody(forgedMeta)
	node1Print := clusterCA.id("node1").Fingerprint()
	borrowed := append(append(append([]byte{}, body...), node1Print[:]...), rogueID.Sign(sigInput("node1", body))...)
	ip, portStr, _ := net.SplitHostPort(node1.Addr())
	port, _ := strconv.Atoi(portStr)
	d := (*delegate)(node0)
	for name, meta := range map[string][]byte{
		"signed by the rogue":              seal(rogueID, "node1", body),
		"node1's fingerprint, rogue's sig": borrowed,
		"node1's metadata, moved":          *node1.meta.Load(),
		"node1's older metadata replayed":  seal(clusterCA.id("node1"), "node1", encodeMetaBody(nodeMeta{Epoch: node1.epoch, Seq: 1, GossipAddr: node1.Addr(), Meta: Meta{Labels: map[string]string{"zone": "evil"}}})),
		"garbage":                          []byte("not meta"),
	} {
		n := &memberlist.Node{Name: "node1", Addr: net.ParseIP(ip), Port: uint16(port), Meta: meta}
		if name == "node1's metadata, moved" {
			n.Port = 1
		}
		if err := d.NotifyAlive(n); err == nil {
			t.Errorf("%s: NotifyAlive accepted it", name)
		}
		d.NotifyUpdate(n) // as if memberlist had applied it anyway
		if got := node1Meta(t, node0); fmt.Sprint(got) != fmt.Sprint(old) {
			t.Fatalf("%s: node1 now shows %+v, was %+v", name, got, old)
		}
	}
}

// TestAttackForgedPermissions: node1 publishes its instance limit and what it
// allows beyond the default sandbox, and node0 plans with them. Metadata for
// node1 that node1 did not sign, claiming it allows everything and runs 65,536
// instances (so that privileged workloads and a flood of replicas would be
// sent to it), is refused; so is such a claim a node makes about itself beyond
// the bounds. Base main carried neither value: every node applied its own
// flag to all.
func TestAttackForgedPermissions(t *testing.T) {
	node0, node1, _, _ := victimCluster(t)
	honest := Meta{Labels: map[string]string{"kubernetes.io/hostname": "node1"}, MaxInstances: 7, Allows: 0b10,
		HostPaths: []string{"/var/log"}, Capabilities: []string{"NET_RAW"}}
	if err := node1.UpdateNode(honest); err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1's permissions", func(v View) bool {
		n, _ := node(v, "node1")
		return n.MaxInstances == 7 && n.Allows == 0b10 && reflect.DeepEqual(n.HostPaths, honest.HostPaths) &&
			reflect.DeepEqual(n.Capabilities, honest.Capabilities)
	})
	old := node1Meta(t, node0)

	forged := honest
	forged.MaxInstances, forged.Allows, forged.HostPaths, forged.Capabilities = maxInstancesPerNode, math.MaxUint64, []string{"/"}, []string{"ALL"}
	body := encodeMetaBody(nodeMeta{Epoch: node1.epoch, Seq: 99, GossipAddr: node1.Addr(), Meta: forged})
	ip, portStr, _ := net.SplitHostPort(node1.Addr())
	port, _ := strconv.Atoi(portStr)
	n := &memberlist.Node{Name: "node1", Addr: net.ParseIP(ip), Port: uint16(port), Meta: seal(clusterCA.id("rogue"), "node1", body)}
	d := (*delegate)(node0)
	if err := d.NotifyAlive(n); err == nil {
		t.Error("NotifyAlive accepted node1's permissions signed by the rogue")
	}
	d.NotifyUpdate(n)
	if got := node1Meta(t, node0); fmt.Sprint(got) != fmt.Sprint(old) {
		t.Fatalf("node1 now shows %+v, was %+v", got, old)
	}
	for _, m := range []Meta{{MaxInstances: maxInstancesPerNode + 1}, {MaxInstances: -1}, {HostPaths: []string{"var/log"}},
		{HostPaths: []string{"/var/../etc"}}, {Capabilities: []string{""}},
		{PodSubnet: "10.244.1.7/24"}, {PodSubnet: "all of them"}, {PodSubnet: "10.244.1.0/24", PodSubnetSince: -1}} {
		if err := checkMeta("node1", m); !errors.Is(err, ErrBadMeta) {
			t.Errorf("checkMeta(%+v) = %v, want ErrBadMeta", m, err)
		}
	}
}

func node1Meta(t *testing.T, c *Cluster) NodeInfo {
	t.Helper()
	n, ok := node(c.Snapshot(), "node1")
	if !ok || !n.Alive {
		t.Fatalf("node1 not alive on %s", c.cfg.NodeName)
	}
	return n
}

// TestAttackTombstoneBomb: base main decoded 20 MiB of 3-byte tombstones
// into 960 MiB. Now a snapshot cannot hold tombstones, a stream message over
// 8 MiB is dropped before memberlist reads it, a state holds at most
// maxStateItems sealed records (each at least 98 bytes), and an owner's
// records are capped.
func TestAttackTombstoneBomb(t *testing.T) {
	node0, _, r, rogueEpoch := victimCluster(t)

	// 20 MiB of tombstones for node1 in a push/pull: the guard drops it.
	var big []byte
	for i := 0; len(big) < 20<<20; i++ {
		big = append(big, 1, 'x', byte(i), byte(i>>8), flagDeleted)
	}
	r.setState([][]byte{r.id.DER}, seal(r.id, "rogue", append([]byte{kindSnapshot, 5, 'r', 'o', 'g', 'u', 'e', 0, 0, 0xff, 0xff, 0xff, 0x03}, big...)))
	before := node0.rejected.Load()
	if err := r.pushTo(t, node0); err == nil {
		t.Fatal("a 20 MiB state was accepted")
	}
	if node0.rejected.Load() == before {
		t.Fatal("the guard did not drop the 20 MiB state")
	}

	// Below the stream cap: as many sealed tombstones about itself as fit
	// 4 MiB. Decoding costs a small constant times the size, and the store
	// keeps at most maxRecordsPerOwner of them.
	var blobs [][]byte
	size := 0
	for i := uint64(1); size < 4<<20; i++ {
		b := seal(r.id, "rogue", encodeDeltaBody(delta{Owner: "rogue", Epoch: rogueEpoch, Record: record{Counter: i, Deleted: true, Info: InstanceInfo{ID: strconv.FormatUint(i, 36)}}}))
		blobs = append(blobs, b)
		size += len(b)
	}
	msg := encodeState([][]byte{r.id.DER}, blobs[:maxStateItems])
	alloc := allocated(func() { decodeState(msg) })
	t.Logf("decoding %d bytes of sealed tombstones allocated %d bytes (%.1f×)", len(msg), alloc, float64(alloc)/float64(len(msg)))
	if alloc > 4*uint64(len(msg)) {
		t.Errorf("decoding %d bytes of tombstones allocated %d bytes", len(msg), alloc)
	}
	if _, err := decodeState(encodeState(nil, blobs)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("%d records in one state: got %v, want ErrMalformed", len(blobs), err)
	}
	r.setState([][]byte{r.id.DER}, blobs[:maxStateItems]...)
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	markerSeen(t, r, node0, rogueEpoch, 1<<40)
	node0.mu.Lock()
	kept := len(node0.store.owners["rogue"].records)
	node0.mu.Unlock()
	if kept > maxRecordsPerOwner {
		t.Fatalf("node0 keeps %d records of the rogue, limit %d", kept, maxRecordsPerOwner)
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAttackCompressionBomb: a member that compresses sends an LZW stream
// of 64 MiB of zeros in 47 KiB (push/pull) and 1 KiB packets; memberlist
// decompresses whatever arrives, and base main's node allocated the whole of
// it. The guard drops compressed messages before memberlist reads them.
func TestAttackCompressionBomb(t *testing.T) {
	node0, _, _, _ := victimCluster(t)
	r := startRogue(t, "rogue2", clusterCA.id("rogue2"), Meta{}, func(c *memberlist.Config) { c.EnableCompression = true })
	r.setState(nil, make([]byte, 64<<20))
	before := node0.rejected.Load()
	var heap runtime.MemStats
	runtime.ReadMemStats(&heap)
	start := heap.TotalAlloc
	if err := r.pushTo(t, node0); err == nil {
		t.Fatal("the compressed push/pull was accepted")
	}
	r.sendTo(t, node0, make([]byte, 1200))
	deadline := time.Now().Add(waitTimeout)
	for node0.rejected.Load() < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the guard dropped %d compressed messages, want 2", node0.rejected.Load()-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.ReadMemStats(&heap)
	// The rogue's own 64 MiB and its compression run in this process too;
	// the victim decompressing would add at least another 64 MiB.
	if grew := heap.TotalAlloc - start; grew > 3*64<<20 {
		t.Fatalf("allocated %d MiB during the attack", grew>>20)
	}
}

// TestAttackWrongCertificate: a node holding the gossip key but a
// certificate from another CA, or one whose certificate names another node,
// is never listed, and says it has not joined.
func TestAttackWrongCertificate(t *testing.T) {
	nodes := startCluster(t, 2, nil)

	outsider := nodeConfig("outsider", nodes[0].Addr())
	outsider.Identity = rogueCA.id("outsider")
	outsider.Verifier = rogueCA.trusts()
	o := startNode(t, outsider)

	// A member whose certificate names "rogue" announcing itself as "node9".
	r := startRogue(t, "node9", clusterCA.id("rogue"), Meta{}, nil)
	r.pushTo(t, nodes[0])

	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range nodes {
			v := c.Snapshot()
			if _, ok := node(v, "outsider"); ok {
				t.Fatalf("%s lists a node whose certificate another CA issued: %s", c.cfg.NodeName, describe(v))
			}
			if _, ok := node(v, "node9"); ok {
				t.Fatalf("%s lists node9, whose certificate names rogue: %s", c.cfg.NodeName, describe(v))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := o.JoinError(); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("outsider JoinError = %v, want ErrNotJoined", err)
	}
	if n := aliveCount(o.Snapshot()); n != 1 {
		t.Fatalf("outsider sees %d members", n)
	}

	// A node without a certificate, or with another node's, does not start.
	for name, modify := range map[string]func(*Config){
		"no certificate":        func(c *Config) { c.Identity = nil },
		"another's certificate": func(c *Config) { c.Identity = clusterCA.id("node0") },
	} {
		cfg := nodeConfig("intruder", nodes[0].Addr())
		modify(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestJoinError: a node started with seeds reports why it has not joined
// (nobody reachable, a wrong gossip key) until it does; one started without
// seeds is a cluster of one by choice.
func TestJoinError(t *testing.T) {
	if err := startNode(t, nodeConfig("solo")).JoinError(); err != nil {
		t.Fatalf("no seeds: JoinError = %v, want nil", err)
	}
	nodes := startCluster(t, 1, nil)
	unreachable := startNode(t, nodeConfig("lonely", testsupport.FreeAddr(t)))
	wrong := nodeConfig("wrong-key", nodes[0].Addr())
	wrong.SecretKeys = [][]byte{otherKey}
	wrongKey := startNode(t, wrong)
	for _, c := range []*Cluster{unreachable, wrongKey} {
		deadline := time.Now().Add(waitTimeout)
		for {
			err := c.JoinError()
			if errors.Is(err, ErrNotJoined) && err.Error() != ErrNotJoined.Error()+": joining" {
				t.Logf("%s: %v", c.cfg.NodeName, err)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: JoinError = %v, want ErrNotJoined with a reason", c.cfg.NodeName, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	joiner := startNode(t, nodeConfig("joiner", nodes[0].Addr()))
	waitFor(t, joiner, "joined", func(View) bool { return joiner.JoinError() == nil })
}

// TestAttackSnapshotRecordCountBomb: a member with only the gossip key sends
// one push/pull whose single snapshot announces a record per 3 bytes of an
// 8 MiB body. Base main's decoder allocated the announced records (about 170
// bytes each, 56 times the message) before any signature was checked; now a
// snapshot may announce no more records than one owner keeps or the message
// may carry, counted at the size of a record that is not a tombstone.
func TestAttackSnapshotRecordCountBomb(t *testing.T) {
	const size = 8 << 20
	body := []byte{kindSnapshot, 0, 0, 0} // owner "", epoch 0, floor 0
	body = binary.AppendUvarint(body, size/3)
	body = append(body, make([]byte, size)...)
	blob := append(body, make([]byte, sealLen)...)
	var e encoder
	e.byte(kindState)
	e.uvarint(0) // certificates
	e.uvarint(1) // sealed items
	e.string(string(blob))
	var err error
	grew := allocated(func() { _, err = decodeState(e.buf) })
	if err == nil {
		t.Fatal("the state decoded")
	}
	if limit := uint64(2 * len(e.buf)); grew > limit {
		t.Fatalf("decoding a %d MiB state allocated %d MiB, want at most %d MiB", len(e.buf)>>20, grew>>20, limit>>20)
	}
}

// TestAttackNestedCompoundHidesCompression: memberlist unwraps compound
// messages to any depth and then decompresses without a cap; base main's
// guard stopped looking at depth 4, so a compressed message inside five
// compounds reached memberlist. Deeper nesting than memberlist sends is now
// dropped.
func TestAttackNestedCompoundHidesCompression(t *testing.T) {
	msg := []byte{mlCompress, 0x82, 0xa4, 'A', 'l', 'g', 'o', 0}
	for depth := 1; depth <= 8; depth++ {
		msg = append([]byte{mlCompound, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
		if err := checkMessage(msg, 0); err == nil {
			t.Fatalf("a compressed message inside %d compound messages passed the guard", depth)
		}
	}
}

// TestAttackUnverifiableAliveForKnownMember: a member with only the gossip
// key sends an alive message for node1 at node1's address, with metadata
// sealed by a certificate nobody has. Base main let any such message through
// to memberlist (to wait for the certificate), which then stored it and its
// incarnation for node1: at 2^32-1 node1's refutation wraps to 0 and none of
// its later metadata is taken again (the incarnation travels beside the
// node in the alive message). For a member that is alive with
// verified metadata, such a message is now refused.
func TestAttackUnverifiableAliveForKnownMember(t *testing.T) {
	node0, node1, _, _ := victimCluster(t)
	ip, port, err := net.SplitHostPort(node1.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	body := encodeMetaBody(nodeMeta{Epoch: 1, Seq: 1, GossipAddr: node1.Addr()})
	forged := append(append([]byte{}, body...), make([]byte, sealLen)...)
	forged[len(body)] = 0x42 // a fingerprint of no certificate, and no signature
	n := &memberlist.Node{Name: "node1", Addr: net.ParseIP(ip), Port: uint16(p), Meta: forged}
	if err := (*delegate)(node0).NotifyAlive(n); !errors.Is(err, ErrUnknownCert) {
		t.Fatalf("NotifyAlive of unverifiable metadata for alive node1: %v, want ErrUnknownCert", err)
	}
	// A member never seen before may still announce itself before its certificate arrives.
	n.Name = "newcomer"
	if err := (*delegate)(node0).NotifyAlive(n); err != nil {
		t.Fatalf("NotifyAlive of a new member's metadata before its certificate: %v, want it held", err)
	}
}

// TestAttackEmptyStreams opens TCP streams to a node's gossip port that end before or
// inside their first message: one with nothing, one with the encryption byte alone, one
// with a truncated header. Memberlist reads such a stream again after the guard's first
// read fails (an empty stream is not an error to it), which once found a nil reader and
// crashed the node: anyone who could reach the port could take it down. The node must
// refuse each and go on gossiping.
func TestAttackEmptyStreams(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	for _, payload := range [][]byte{nil, {mlEncrypt}, {mlEncrypt, 0, 0}} {
		for range 3 {
			conn, err := net.Dial("tcp", nodes[0].Addr())
			if err != nil {
				t.Fatal(err)
			}
			if len(payload) > 0 {
				if _, err := conn.Write(payload); err != nil {
					t.Fatal(err)
				}
			}
			conn.Close()
		}
	}
	// The node still works: a change of the other reaches it.
	web := instances(1, "after")
	if err := nodes[1].SetInstances(web); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nodes[0], "node1's instance after the empty streams", func(v View) bool { return len(instancesOf(v, "node1")) == 1 })
}

// rogueDecision is a decision the rogue may legitimately make, sealed.
func (r *rogue) decision(key string, t time.Time) []byte {
	return sealDecision(r.id, Decision{Key: key, Author: "rogue", Time: time.UnixMilli(t.UnixMilli()), Body: []byte("rogue")}).seal
}

// waitRejected waits until victim has dropped at least n more messages than before.
func waitRejected(t *testing.T, victim *Cluster, before, n uint64) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for victim.rejected.Load() < before+n {
		if time.Now().After(deadline) {
			t.Fatalf("%s dropped %d messages, want at least %d", victim.cfg.NodeName, victim.rejected.Load()-before, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAttackForgedDecision: the rogue tries to replace node1's decision of a
// key with one "by node1" signed with its own key (also under node1's
// fingerprint), node1's real decision with its body changed, and its own
// decision dated an hour ahead (which would win every merge of the key for
// an hour). Each is refused, in broadcasts and in push/pull.
func TestAttackForgedDecision(t *testing.T) {
	node0, node1, r, _ := victimCluster(t)
	real, err := node1.Decide("rollout/default/web", []byte(`{"revert":"def"}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1's decision", func(v View) bool { d, ok := decisionOf(v, real.Key); return ok && sameDecision(d, real) })

	later := Decision{Key: real.Key, Author: "node1", Time: real.Time.Add(time.Second), Body: []byte(`{"revert":"evil"}`)}
	body := encodeDecisionBody(later)
	node1Print := clusterCA.id("node1").Fingerprint()
	borrowed := append(append(append([]byte{}, body...), node1Print[:]...), r.id.Sign(sigInput("node1", body))...)
	tampered := slices.Clone(sealDecision(clusterCA.id("node1"), later).seal)
	tampered[bytes.Index(tampered, []byte("evil"))] = 'E'
	forgeries := [][]byte{
		seal(r.id, "node1", body),
		borrowed,
		tampered,
		r.decision(real.Key, time.Now().Add(time.Hour)),
	}
	before := node0.rejected.Load()
	for _, msg := range forgeries {
		r.sendTo(t, node0, msg)
	}
	r.setState([][]byte{r.id.DER}, forgeries...)
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	// The push/pull is merged when the join returns; the rogue's own
	// decision, honestly dated and sent after the broadcasts, is accepted
	// once they have been handled.
	waitRejected(t, node0, before, uint64(len(forgeries)))
	r.sendTo(t, node0, r.decision("rogue/own", time.Now()))
	v := waitFor(t, node0, "the rogue's own decision", func(v View) bool { _, ok := decisionOf(v, "rogue/own"); return ok })
	if d, _ := decisionOf(v, real.Key); !sameDecision(d, real) {
		t.Fatalf("a forgery replaced node1's decision: node0 keeps %+v", d)
	}
}

// TestAttackDecisionUntrustedCert: decisions signed with a revoked
// certificate, or one another CA issued, are refused even with the
// certificate in the same push/pull.
func TestAttackDecisionUntrustedCert(t *testing.T) {
	revoked := filepath.Join(t.TempDir(), "revoked")
	if err := os.WriteFile(revoked, []byte("node exnode\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	verifier, err := identity.NewVerifier(filepath.Join(clusterCA.dir, identity.CACertFile), revoked)
	if err != nil {
		t.Fatal(err)
	}
	victim := startCluster(t, 1, func(c *Config) { c.Verifier = verifier })[0]
	r := startRogue(t, "rogue", clusterCA.id("rogue"), Meta{}, nil)
	ex, outsider := clusterCA.id("exnode"), rogueCA.id("outsider")
	now := time.Now()
	r.setState([][]byte{r.id.DER, ex.DER, outsider.DER},
		sealDecision(ex, Decision{Key: "revoked", Author: "exnode", Time: now, Body: []byte("x")}).seal,
		sealDecision(outsider, Decision{Key: "unknown", Author: "outsider", Time: now, Body: []byte("x")}).seal,
		r.decision("marker", now))
	if err := r.pushTo(t, victim); err != nil {
		t.Fatal(err)
	}
	v := waitFor(t, victim, "the rogue's marker", func(v View) bool { _, ok := decisionOf(v, "marker"); return ok })
	if len(v.Decisions) != 1 {
		t.Fatalf("victim keeps %+v, want the marker alone", v.Decisions)
	}
}

// TestAttackDecisionFlood: the rogue pushes 44 more decisions than it may keep. The
// victim keeps its newest maxDecisionsPerAuthor and node1's decision, which a flood by one
// author cannot push out.
func TestAttackDecisionFlood(t *testing.T) {
	node0, node1, r, _ := victimCluster(t)
	keep, err := node1.Decide("node1/keep", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, node0, "node1's decision", func(v View) bool { _, ok := decisionOf(v, keep.Key); return ok })
	const n = maxDecisionsPerAuthor + 44
	blobs := make([][]byte, n)
	start := time.Now().Add(-time.Hour)
	for i := range blobs {
		blobs[i] = r.decision(fmt.Sprint("flood/", i), start.Add(time.Duration(i)*time.Second))
	}
	r.setState([][]byte{r.id.DER}, blobs...)
	if err := r.pushTo(t, node0); err != nil {
		t.Fatal(err)
	}
	v := waitFor(t, node0, "the newest flood decision", func(v View) bool { _, ok := decisionOf(v, fmt.Sprint("flood/", n-1)); return ok })
	byRogue := 0
	for _, d := range v.Decisions {
		if d.Author == "rogue" {
			byRogue++
		}
	}
	if byRogue != maxDecisionsPerAuthor {
		t.Fatalf("node0 keeps %d of the rogue's decisions, limit %d", byRogue, maxDecisionsPerAuthor)
	}
	if _, ok := decisionOf(v, keep.Key); !ok {
		t.Fatal("the flood pushed out node1's decision")
	}
	if _, ok := decisionOf(v, "flood/0"); ok {
		t.Fatal("the rogue's oldest decision is kept")
	}
}
