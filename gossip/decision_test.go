package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// unsignedDecision is a decision with a seal of zeros: the store does not
// verify, so its tests need no keys.
func unsignedDecision(author, key string, ms int64, body string) sealedDecision {
	d := Decision{Key: key, Author: author, Time: time.UnixMilli(ms), Body: []byte(body)}
	s := sealed(append(encodeDecisionBody(d), make([]byte, sealLen)...))
	b := s.body()
	d.Body = b[len(b)-len(body):]
	return sealedDecision{Decision: d, seal: s}
}

// signedDecision is a decision sealed by its author's test certificate.
func signedDecision(author, key string, t time.Time, body string) sealedDecision {
	return sealDecision(clusterCA.id(author), Decision{Key: key, Author: author, Time: time.UnixMilli(t.UnixMilli()), Body: []byte(body)})
}

// decisionOf returns the decision of key in v.
func decisionOf(v View, key string) (Decision, bool) {
	i := slices.IndexFunc(v.Decisions, func(d Decision) bool { return d.Key == key })
	if i < 0 {
		return Decision{}, false
	}
	return v.Decisions[i], true
}

func sameDecision(a, b Decision) bool {
	return a.Key == b.Key && a.Author == b.Author && a.Time.Equal(b.Time) && bytes.Equal(a.Body, b.Body)
}

func TestDecisionStoreMerge(t *testing.T) {
	base := unsignedDecision("b", "k", 1000, "base")
	tests := []struct {
		name string
		d    sealedDecision
		want bool
	}{
		{"later time wins", unsignedDecision("a", "k", 1001, "x"), true},
		{"earlier time loses", unsignedDecision("z", "k", 999, "x"), false},
		{"same time, greater author wins", unsignedDecision("c", "k", 1000, "x"), true},
		{"same time, smaller author loses", unsignedDecision("a", "k", 1000, "x"), false},
		{"identical is a no-op", base, false},
		{"another key is added", unsignedDecision("a", "other", 1, "x"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDecisionStore()
			s.add(base)
			if got := s.add(tt.d); got != tt.want {
				t.Fatalf("add = %v, want %v", got, tt.want)
			}
			want := base.Decision
			if tt.want && tt.d.Key == "k" {
				want = tt.d.Decision
			}
			if got, _ := s.get("k"); !sameDecision(got.Decision, want) {
				t.Fatalf("kept %+v, want %+v", got.Decision, want)
			}
			if s.wouldChange(tt.d) {
				t.Fatalf("wouldChange after add is true for %+v", tt.d.Decision)
			}
		})
	}
}

// TestDecisionStoreConverges applies the same decisions in many orders,
// including two an author signed in the same millisecond with different
// bodies: every order ends with the same set.
func TestDecisionStoreConverges(t *testing.T) {
	all := []sealedDecision{
		unsignedDecision("a", "k1", 10, "a1"), unsignedDecision("b", "k1", 10, "b1"), unsignedDecision("a", "k1", 9, "old"),
		unsignedDecision("c", "k2", 5, "one"), unsignedDecision("c", "k2", 5, "two"),
		unsignedDecision("a", "k3", 1, "x"), unsignedDecision("b", "k3", 2, "y"), unsignedDecision("a", "k3", 3, "z"),
	}
	var want []Decision
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		s := newDecisionStore()
		for _, j := range rng.Perm(len(all)) {
			s.add(all[j])
		}
		got := s.view()
		if i == 0 {
			want = got
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %d ends with\n%+v\nwant\n%+v", i, got, want)
		}
	}
	if len(want) != 3 || want[0].Author != "b" || string(want[2].Body) != "z" {
		t.Fatalf("winners %+v: want b's k1 and a's z for k3", want)
	}
}

// TestDecisionStoreBounds: one author flooding keeps its newest maxDecisionsPerAuthor and
// cannot push out another's; beyond 8,192 in all the oldest go.
func TestDecisionStoreBounds(t *testing.T) {
	s := newDecisionStore()
	s.add(unsignedDecision("honest", "keep", 1, "x"))
	for i := range maxDecisionsPerAuthor + 44 {
		if !s.add(unsignedDecision("flood", fmt.Sprint("f", i), int64(100+i), "x")) {
			t.Fatalf("flood decision %d, newer than all, was refused", i)
		}
	}
	if n := len(s.byAuthor["flood"]); n != maxDecisionsPerAuthor {
		t.Fatalf("flood keeps %d decisions, want %d", n, maxDecisionsPerAuthor)
	}
	if _, ok := s.get("keep"); !ok {
		t.Fatal("the flood pushed out another author's decision")
	}
	if _, ok := s.get("f43"); ok {
		t.Fatal("the flood's oldest decisions are kept")
	}
	if s.add(unsignedDecision("flood", "older", 99, "x")) {
		t.Fatal("a decision older than all its author keeps was kept")
	}
	// Replacing the author's own decision of a key needs no room.
	if !s.add(unsignedDecision("flood", "f100", 1000, "again")) {
		t.Fatal("an author's newer decision of its own key was refused")
	}

	s = newDecisionStore()
	authors := maxDecisions/maxDecisionsPerAuthor + 1
	for a := range authors {
		for i := range maxDecisionsPerAuthor {
			s.add(unsignedDecision(fmt.Sprint("n", a), fmt.Sprint(a, "/", i), int64(i*authors+a), "x"))
		}
	}
	if len(s.byKey) != maxDecisions {
		t.Fatalf("keeps %d decisions, limit %d", len(s.byKey), maxDecisions)
	}
	oldest := slices.MinFunc(s.newestFirst(), func(a, b sealedDecision) int { return compareAge(a.Decision, b.Decision) })
	if got := oldest.Time.UnixMilli(); got != int64(maxDecisionsPerAuthor*authors-maxDecisions) {
		t.Fatalf("oldest kept is at %d ms, want the %d oldest dropped", got, maxDecisionsPerAuthor*authors-maxDecisions)
	}
}

func TestDecisionRoundTrip(t *testing.T) {
	id := clusterCA.id("a")
	for _, want := range []Decision{
		{Key: "rollout/default/web", Author: "a", Time: time.UnixMilli(1796601600123), Body: []byte(`{"failed":"abc","revert":"def"}`)},
		{Key: strings.Repeat("k", MaxDecisionKey), Author: "a", Time: time.UnixMilli(-5), Body: bytes.Repeat([]byte{0}, MaxDecisionBody)},
	} {
		sd := sealDecision(id, want)
		if len(sd.seal) > maxDecisionLen {
			t.Fatalf("sealed decision of %d bytes, maxDecisionLen %d", len(sd.seal), maxDecisionLen)
		}
		got, err := decodeDecision(sd.seal)
		if err != nil || !reflect.DeepEqual(got.Decision, want) || !bytes.Equal(got.seal, sd.seal) {
			t.Fatalf("got %+v, %v; want %+v", got.Decision, err, want)
		}
		st, err := decodeState(encodeState([][]byte{id.DER}, [][]byte{sd.seal}))
		if err != nil || len(st.Decisions) != 1 || !reflect.DeepEqual(st.Decisions[0].Decision, want) {
			t.Fatalf("in a state: %+v, %v", st.Decisions, err)
		}
	}
}

func TestDecodeMalformedDecision(t *testing.T) {
	id := clusterCA.id("a")
	sealBody := func(b ...byte) []byte { return seal(id, "a", b) }
	big := func(key string, body []byte) []byte {
		return seal(id, "a", encodeDecisionBody(Decision{Key: key, Author: "a", Time: time.UnixMilli(1), Body: body}))
	}
	for _, tt := range []struct {
		name string
		buf  []byte
	}{
		{"key too long", big(strings.Repeat("k", MaxDecisionKey+1), []byte("x"))},
		{"body too long", big("k", make([]byte, MaxDecisionBody+1))},
		{"empty key", big("", []byte("x"))},
		{"empty body", big("k", nil)},
		{"no author", sealBody(kindDecision, 1, 'k', 0, 2, 1, 'x')},
		{"trailing byte", sealBody(kindDecision, 1, 'k', 1, 'a', 2, 1, 'x', 0)},
		{"wrong kind", sealBody(kindDelta, 1, 'k', 1, 'a', 2, 1, 'x')},
		{"no seal", []byte{kindDecision, 1, 'k', 1, 'a', 2, 1, 'x'}},
		{"larger than any decision", append(big("k", []byte("x")), make([]byte, maxDecisionLen)...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeDecision(tt.buf); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeDecision: %v, want ErrMalformed", err)
			}
			if _, err := decodeState(encodeState(nil, [][]byte{tt.buf})); !errors.Is(err, ErrMalformed) && len(tt.buf) > 0 && tt.buf[0] == kindDecision {
				t.Fatalf("decodeState: %v, want ErrMalformed", err)
			}
		})
	}
	one := signedDecision("a", "k", time.Now(), "x").seal
	blobs := make([][]byte, maxDecisions+1)
	for i := range blobs {
		blobs[i] = one
	}
	if _, err := decodeState(encodeState(nil, blobs)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a state of %d decisions: %v, want ErrMalformed", len(blobs), err)
	}
}

// TestDecisionDecodingBounded: decoding a state full of the smallest
// decisions allocates a small multiple of its size.
func TestDecisionDecodingBounded(t *testing.T) {
	blobs := make([][]byte, maxDecisions)
	for i := range blobs {
		blobs[i] = signedDecision("a", fmt.Sprint(i), time.UnixMilli(int64(i)), "x").seal
	}
	buf := encodeState(nil, blobs)
	var err error
	n := allocated(func() { _, err = decodeState(buf) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 3*uint64(len(buf)) {
		t.Fatalf("decoding %d bytes of decisions allocated %d bytes, more than 3 times as much", len(buf), n)
	}
	t.Logf("decoding %d bytes of %d decisions allocated %d bytes", len(buf), maxDecisions, n)
}

func TestDecideRejectsAndOrders(t *testing.T) {
	c := startNode(t, nodeConfig("solo"))
	for _, tt := range []struct {
		key  string
		body []byte
	}{
		{"", []byte("x")}, {strings.Repeat("k", MaxDecisionKey+1), []byte("x")},
		{"k", nil}, {"k", make([]byte, MaxDecisionBody+1)},
	} {
		if _, err := c.Decide(tt.key, tt.body); !errors.Is(err, ErrInvalidDecision) {
			t.Errorf("Decide(%d-byte key, %d-byte body) = %v, want ErrInvalidDecision", len(tt.key), len(tt.body), err)
		}
	}
	body := []byte("first")
	first, err := c.Decide("k", body)
	if err != nil {
		t.Fatal(err)
	}
	body[0] = 'F' // the caller's slice is not kept
	second, err := c.Decide("k", []byte("second"))
	if err != nil {
		t.Fatal(err)
	}
	if !second.Time.After(first.Time) || string(first.Body) != "first" || first.Author != "solo" || first.Time.UnixMilli()*int64(time.Millisecond) != first.Time.UnixNano() {
		t.Fatalf("first %+v, second %+v: want the author, whole milliseconds, and the second later", first, second)
	}
	v := waitFor(t, c, "the second decision", func(v View) bool { d, ok := decisionOf(v, "k"); return ok && sameDecision(d, second) })
	if len(v.Decisions) != 1 {
		t.Fatalf("view lists %d decisions, want 1", len(v.Decisions))
	}
}

// TestDecisionsSpreadAndOutliveAuthor: a decision reaches every node, and
// after its author left and was forgotten, a node that joins later still
// receives and verifies it through push/pull.
func TestDecisionsSpreadAndOutliveAuthor(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.DeadRetention = 0 })
	want, err := nodes[0].Decide("rollout/default/web", []byte(`{"failed":"abc","revert":"def"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes[1:] {
		waitFor(t, c, "node0's decision", func(v View) bool { d, ok := decisionOf(v, want.Key); return ok && sameDecision(d, want) })
	}
	if err := nodes[0].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	nodes[0].Shutdown()
	for _, c := range nodes[1:] {
		waitFor(t, c, "node0 forgotten", func(v View) bool { _, ok := node(v, "node0"); return !ok })
	}
	// The broadcasts are spent: what node3 learns, it learns by push/pull.
	deadline := time.Now().Add(waitTimeout)
	for nodes[1].queue.NumQueued()+nodes[2].queue.NumQueued() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("broadcast queues never drained")
		}
		time.Sleep(50 * time.Millisecond)
	}
	late := startNode(t, nodeConfig("node3", nodes[1].Addr()))
	v := waitFor(t, late, "node0's decision", func(v View) bool { d, ok := decisionOf(v, want.Key); return ok && sameDecision(d, want) })
	if n, ok := node(v, "node0"); ok && n.Alive {
		t.Fatalf("node3 sees node0 alive: %s", describe(v))
	}
}

// TestConcurrentDecisionsConverge: two nodes decide the same key at once;
// every node ends with the same winner, the greater by (Time, Author).
func TestConcurrentDecisionsConverge(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	got := make([]Decision, 2)
	errs := make(chan error, 2)
	for i, c := range nodes[1:] {
		go func() {
			var err error
			got[i], err = c.Decide("status/1234", []byte(fmt.Sprint("from ", c.cfg.NodeName)))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	winner := got[0]
	if got[1].Time.After(winner.Time) || got[1].Time.Equal(winner.Time) && got[1].Author > winner.Author {
		winner = got[1]
	}
	for _, c := range nodes {
		waitFor(t, c, "the winner "+winner.Author, func(v View) bool {
			d, ok := decisionOf(v, winner.Key)
			return ok && sameDecision(d, winner) && len(v.Decisions) == 1
		})
	}
}

// TestDecisionsFileRestart: decisions survive a restart of the whole cluster
// through Config.DecisionsFile; a corrupt file, or a tampered decision in
// it, is dropped without stopping the node.
func TestDecisionsFileRestart(t *testing.T) {
	dir := t.TempDir()
	configure := func(name string, seeds ...string) Config {
		cfg := nodeConfig(name, seeds...)
		cfg.DecisionsFile = filepath.Join(dir, name+".decisions")
		return cfg
	}
	a := startNode(t, configure("node0"))
	b := startNode(t, configure("node1", a.Addr()))
	da, err := a.Decide("a", []byte("by node0"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Decide("b", []byte("by node1"))
	if err != nil {
		t.Fatal(err)
	}
	both := func(v View) bool {
		x, okA := decisionOf(v, "a")
		y, okB := decisionOf(v, "b")
		return okA && okB && sameDecision(x, da) && sameDecision(y, db)
	}
	waitFor(t, a, "both decisions", both)
	waitFor(t, b, "both decisions", both)
	// Saved within a second, without waiting for Shutdown.
	deadline := time.Now().Add(waitTimeout)
	for {
		msg, err := readDecisionsFile(filepath.Join(dir, "node1.decisions"))
		if err == nil && len(msg.Decisions) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1's decisions file: %d decisions, %v", len(msg.Decisions), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a.Shutdown()
	b.Shutdown()

	// Restart alone, without seeds: the file is the only source.
	for _, name := range []string{"node0", "node1"} {
		c := startNode(t, configure(name))
		if v := c.Snapshot(); !both(v) {
			t.Fatalf("%s after restart: %+v", name, v.Decisions)
		}
		c.Shutdown()
	}

	// A decision tampered with in the file is dropped; the others stay.
	path := filepath.Join(dir, "node0.decisions")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("by node1"))
	data[i] = 'B'
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, configure("node0"))
	if v := c.Snapshot(); len(v.Decisions) != 1 || !sameDecision(v.Decisions[0], da) {
		t.Fatalf("after tampering: %+v, want node0's decision alone", v.Decisions)
	}
	c.Shutdown()

	// A corrupt file is not fatal.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = startNode(t, configure("node0"))
	if v := c.Snapshot(); len(v.Decisions) != 0 {
		t.Fatalf("from a corrupt file: %+v", v.Decisions)
	}
}
