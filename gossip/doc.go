// Package gossip is Shoal's membership room: who is in the cluster, what each
// node offers, and which instances each node runs, spread by
// hashicorp/memberlist (SWIM gossip with Lifeguard).
//
// It owns: the memberlist configuration and its timing profiles (Config,
// DefaultConfig, FastConfig, SafeConfig), the gossip keyring, node metadata
// (Meta: labels, allocatable CPU and memory, applied revision, API and DNS
// addresses), the dissemination of instance state (SetInstances) and of
// signed cluster-wide decisions (Decide), and the membership view (Snapshot,
// Changes).
//
// It must not: import spec, planner or any other Shoal package but identity
// (it defines its own small types; the agent converts a View into a planner view), decide
// anything about placement, or block inside a memberlist delegate (rule 8
// of docs/design.md: delegates update a map under a short mutex and signal Changes
// with a non-blocking send; the consumer reads Snapshot when it likes).
//
// # Usage
//
//	cfg := gossip.DefaultConfig()
//	cfg.NodeName = "node-a"
//	cfg.Seeds = []string{"10.0.0.1:7946", "10.0.0.2:7946"}
//	key, err := gossip.ParseKey(os.Getenv("SHOAL_GOSSIP_KEY"))
//	cfg.SecretKeys = [][]byte{key}
//	cfg.Identity, err = identity.Load("node.crt", "node.key") // names "node-a"
//	cfg.Verifier, err = identity.NewVerifier("ca.crt", "")
//	c, err := gossip.Start(ctx, cfg)
//	defer c.Shutdown()
//	c.SetInstances(mine)     // whenever this node's instances change
//	<-c.Changes()            // then
//	view := c.Snapshot()     // immutable, by owner; unchanged owners' lists shared
//	c.Leave(2 * time.Second) // on SIGTERM, before Shutdown
//
// # Encryption keys
//
// Gossip is encrypted with AES-GCM and a key is required unless
// Config.AllowPlaintext is set. Create a 32-byte (AES-256) key with
//
//	head -c 32 /dev/urandom | base64
//
// and give the same key to every node (ParseKey decodes it). Config.SecretKeys
// is a keyring: the first key encrypts what this node sends, and every key is
// tried on what it receives. Rotate without downtime in three rolling passes,
// restarting (or reconfiguring) every node in each pass before the next:
//
//  1. add the new key after the old one: [old, new] — everyone still sends with old;
//  2. make the new key first: [new, old] — nodes switch one by one, all accept both;
//  3. drop the old key: [new].
//
// A node whose keys share nothing with the cluster cannot join: the seed
// cannot decrypt its join request, and plaintext from a node without keys is
// rejected.
//
// # Identity: each node speaks only for itself
//
// The gossip key is shared, so it proves membership, not identity. Every
// node also has its own Ed25519 key and a certificate from the cluster CA
// naming it (package identity; `shoal ca`). A node seals what it says about
// itself: its metadata, every instance delta, and every snapshot of its own
// instances, each with its certificate's fingerprint and a signature over the
// node's name and the bytes. Receivers accept a record only when a certificate
// that chains to the CA, is not revoked and names the record's node signed
// it; relays forward the owner's sealed bytes unchanged, so state stays
// verifiable whichever node relays it. Certificates travel in push/pull
// (verified once, cached by fingerprint); metadata signed with a certificate
// not yet received is held, not shown, until it arrives, and this node fetches
// it from the member directly. Metadata also names the gossip address it was
// signed for and is ordered by (epoch, sequence), so it cannot be moved to
// another address or replayed. Labels kubelet would own must describe the
// node itself (kubernetes.io/hostname is its name), and capacity and the
// instance limit are bounded (ErrBadMeta). Metadata also carries what the node
// allows instances beyond the default sandbox, which the planner filters on. See docs/cluster-identity.md for the model and operations.
//
// # Decisions
//
// A Decision is a small statement one node makes about the cluster (Decide:
// a key, an opaque body, sealed by its author with a time). Every node
// relays every decision verbatim, in broadcasts and in push/pull together
// with its author's certificate, so it survives its author and reaches nodes
// that never saw the author. For each key every node keeps the decision with
// the greatest (Time, Author), whatever order they arrive in, and View.Decisions
// lists them. Bounds: key 1 to 256 bytes, body 1 to 1024, 1,024 decisions per
// author and 8,192 in all (the oldest go first), and none dated more than
// five minutes ahead of the receiver's clock. Config.DecisionsFile keeps them
// across restarts.
//
// Decoding is bounded: every count and length is checked against the bytes
// left before allocating, a push/pull holds at most maxStateItems records and
// maxStateCerts certificates, and the transport drops compressed messages
// (memberlist would decompress them without a cap), stream messages over
// 8 MiB and push/pull headers that announce more than the message holds.
//
// A node started with Seeds that has not yet seen another member alive
// reports why in JoinError; the agent runs nothing meanwhile.
//
// # Failure detection
//
// DefaultConfig declares a node that dies without leaving dead in about
// 2–3 s with 3 nodes and 4–4.5 s with 100 (see DefaultConfig for the sum).
// The profiles trade speed against false suspicion of a node that is only slow
// (GC pause, CPU starvation, a lost packet):
//
//	profile  probe interval/timeout  suspicion mult  dead after, N=3   N=100    tolerates a stall of
//	Fast     200ms / 100ms           3               ≈ 1 s             ≈ 1.5–2 s  ~0.2 s
//	Default  500ms / 250ms           3               ≈ 2.3–2.6 s       ≈ 4–4.5 s  ~0.5 s
//	Safe     1s / 500ms              4               ≈ 5–6 s           ≈ 9–10 s   ~1 s
//
// A graceful Leave reaches everyone within a few gossip intervals. A dead or
// departed member stays in Snapshot with Alive=false for Config.DeadRetention
// (default 1 minute, checked once a second), and its instances leave the
// Snapshot the moment it is declared dead or leaves.
//
// # Instance state
//
// Each node is the only authority on its own instances. SetInstances diffs
// the new list against the last one and gossips one small delta per changed
// instance (piggybacked on probes and gossip packets through a
// memberlist.TransmitLimitedQueue, each fitting one UDP packet). Every delta is
// versioned (owner epoch = the owner process's start time, announced in its
// node metadata; per-owner change counter), so late or reordered deltas are
// ignored and a restarted node replaces what its previous run published as
// soon as peers see its new metadata; receivers re-broadcast what was news.
// Every PushPullInterval, memberlist's TCP push/pull exchanges the full state
// — every owner's latest known records, not only the sender's own — which
// repairs lost deltas, carries long lists to nodes that join late, and
// converges even when two nodes only hear of each other through a third. A
// node that has just joined pulls the full state once more a second later,
// from a random member, since its seed may itself have been joining (a cold
// start). See store for the merge rule. The cost is one TCP exchange of about 100 bytes
// per instance in the cluster per interval per node.
//
// Limits: node metadata, with its 96-byte seal, must encode to at most 512
// bytes (ErrMetaTooLarge);
// an instance must encode to one packet (ErrInvalidInstance). A member whose
// metadata cannot be decoded or verified is not listed, and its instances are
// ignored.
package gossip
