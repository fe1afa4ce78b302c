package gossip

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleInstance(id string) InstanceInfo {
	return InstanceInfo{
		ID: id, Namespace: "shop", Workload: "web", Node: "a", SpecHash: "0123abcd",
		Ready: true, Running: true, Addr: "10.1.0.7",
		Ports: []Port{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}},
	}
}

// unseal drops what decoding adds (the seal), for comparing with what was encoded.
func unsealDelta(d delta) delta { d.seal = nil; return d }

func TestDeltaRoundTrip(t *testing.T) {
	id := clusterCA.id("a")
	tests := []delta{
		{Owner: "a", Epoch: 1700000000123456789, Record: record{Counter: 7, Info: sampleInstance("web-1")}},
		{Owner: "a", Epoch: -5, Record: record{Counter: 1 << 40, Deleted: true, Info: InstanceInfo{ID: "web-2", Node: "a"}}},
		{Owner: "b", Epoch: 0, Record: record{Counter: 1, Info: InstanceInfo{ID: "x", Node: "b"}}},
	}
	for _, want := range tests {
		buf := seal(id, "a", encodeDeltaBody(want))
		got, err := decodeDelta(buf)
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if got.seal.fingerprint() != id.Fingerprint() || string(got.seal) != string(buf) {
			t.Fatalf("seal not kept: %+v", got.seal)
		}
		if got := unsealDelta(got); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	id := clusterCA.id("a")
	snap := ownerState{Owner: "a", Epoch: 9, Floor: 3, Records: []record{{Counter: 2, Info: sampleInstance("web-1")}}}
	dl := delta{Owner: "a", Epoch: 9, Record: record{Counter: 4, Deleted: true, Info: InstanceInfo{ID: "web-2", Node: "a"}}}
	buf := encodeState([][]byte{id.DER}, [][]byte{seal(id, "a", encodeSnapshotBody(snap)), seal(id, "a", encodeDeltaBody(dl))})
	got, err := decodeState(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Certs) != 1 || string(got.Certs[0]) != string(id.DER) || len(got.States) != 1 || len(got.Deltas) != 1 {
		t.Fatalf("decoded %d certs, %d snapshots, %d deltas", len(got.Certs), len(got.States), len(got.Deltas))
	}
	gotSnap := got.States[0]
	gotSnap.seal = nil
	if !reflect.DeepEqual(gotSnap, snap) || !reflect.DeepEqual(unsealDelta(got.Deltas[0]), dl) {
		t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", gotSnap, got.Deltas[0], snap, dl)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	want := nodeMeta{Epoch: 42, Seq: 3, GossipAddr: "10.0.0.1:7946", Meta: Meta{
		Labels:   map[string]string{"kubernetes.io/hostname": "a", "topology.kubernetes.io/zone": "z1"},
		MilliCPU: 4000, MemoryBytes: 8 << 30, Revision: strings.Repeat("f", 40),
		APIAddr: "10.0.0.1:7070", DNSAddr: "10.0.0.1:53",
		MaxInstances: 250, Allows: 0b101, HostPaths: []string{"/var/log", "/data"}, Capabilities: []string{"NET_RAW", "NET_ADMIN"},
		PodSubnet: "10.244.17.0/24", PodSubnetSince: 1796601600123,
	}}
	buf := seal(clusterCA.id("a"), "a", encodeMetaBody(want))
	got, _, err := decodeMeta(buf)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v %v, want %+v", got, err, want)
	}
	t.Logf("sealed meta with 2 labels, a 40-char revision, 2 host paths, 2 capabilities and a pod subnet: %d bytes of 512", len(buf))
}

func TestMetaTooLarge(t *testing.T) {
	labels := map[string]string{}
	for i := range 15 {
		labels[strings.Repeat("k", 10)+string(rune('a'+i))] = strings.Repeat("v", 20)
	}
	err := checkMetaSize(nodeMeta{Meta: Meta{Labels: labels}})
	if !errors.Is(err, ErrMetaTooLarge) || !strings.Contains(err.Error(), "15 labels") {
		t.Fatalf("got %v, want ErrMetaTooLarge naming the label count", err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	id := clusterCA.id("a")
	sealBody := func(b ...byte) []byte { return seal(id, "a", b) }
	valid := seal(id, "a", encodeDeltaBody(delta{Owner: "a", Epoch: 1, Record: record{Counter: 1, Info: sampleInstance("w")}}))
	validState := encodeState([][]byte{id.DER}, [][]byte{valid})
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"no seal", []byte{kindDelta, 1, 'a', 2, 1, 'i', 1, 0}},
		{"wrong kind", sealBody(kindSnapshot, 1, 'a', 2, 1, 'i', 1, flagDeleted)},
		{"truncated body", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1)},
		{"trailing byte", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1, flagDeleted, 0)},
		{"huge string length", sealBody(kindDelta, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"string past end", sealBody(kindDelta, 10, 'a')},
		{"overlong varint", sealBody(append([]byte{kindDelta, 1, 'a'}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}...)...)},
		{"unknown flags", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1, 0x80)},
		{"deleted with state flags", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1, flagDeleted|flagReady)},
		{"port count beyond size", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1, 0, 0, 0, 0, 0, 0xff, 0x01)},
		{"port beyond int32", sealBody(kindDelta, 1, 'a', 2, 1, 'i', 1, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeDelta(tt.buf); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeDelta: %v, want ErrMalformed", err)
			}
		})
	}
	states := []struct {
		name string
		buf  []byte
	}{
		{"cert count beyond size", []byte{kindState, 0xff, 0xff, 0x03}},
		{"record count beyond size", []byte{kindState, 0, 0xff, 0xff, 0x03}},
		{"state truncated", validState[:len(validState)-1]},
		{"empty record", []byte{kindState, 0, 1, 0}},
		{"tombstone in snapshot", encodeState(nil, [][]byte{sealBody(kindSnapshot, 1, 'a', 2, 0, 1, 1, 'i', 1, flagDeleted)})},
		{"unknown record kind", encodeState(nil, [][]byte{sealBody(kindMeta, 0)})},
	}
	for _, tt := range states {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeState(tt.buf); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeState: %v, want ErrMalformed", err)
			}
		})
	}
	if _, _, err := decodeMeta(sealBody(kindMeta + 1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown meta kind: got %v, want ErrMalformed", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic or
// allocate beyond a small constant times the input, and whatever decodes must
// re-encode to something that decodes to the same value.
func FuzzDecode(f *testing.F) {
	id := clusterCA.id("a")
	dl := seal(id, "a", encodeDeltaBody(delta{Owner: "a", Epoch: 3, Record: record{Counter: 2, Info: sampleInstance("w")}}))
	f.Add(dl)
	f.Add(seal(id, "a", encodeDeltaBody(delta{Owner: "a", Epoch: 3, Record: record{Counter: 2, Deleted: true, Info: InstanceInfo{ID: "w"}}})))
	snap := seal(id, "a", encodeSnapshotBody(ownerState{Owner: "a", Epoch: 1, Floor: 2, Records: []record{{Counter: 1, Info: sampleInstance("w")}}}))
	f.Add(snap)
	dc := seal(id, "a", encodeDecisionBody(Decision{Key: "rollout/default/web", Author: "a", Time: time.UnixMilli(1796601600123), Body: []byte(`{"revert":"def"}`)}))
	f.Add(dc)
	f.Add(encodeState([][]byte{id.DER}, [][]byte{snap, dl, dc}))
	f.Add(seal(id, "a", encodeMetaBody(nodeMeta{Epoch: 5, Seq: 1, GossipAddr: "127.0.0.1:7946", Meta: Meta{Labels: map[string]string{"a": "b"}, Revision: "abc"}})))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		if d, err := decodeDelta(buf); err == nil {
			again, err := decodeDelta(append(encodeDeltaBody(d), buf[len(buf)-sealLen:]...))
			if err != nil || !reflect.DeepEqual(unsealDelta(again), unsealDelta(d)) {
				t.Fatalf("delta does not round trip: %+v then %+v, %v", d, again, err)
			}
		}
		if s, err := decodeSnapshot(buf, maxStateRecords); err == nil {
			again, err := decodeSnapshot(append(encodeSnapshotBody(s), buf[len(buf)-sealLen:]...), maxStateRecords)
			s.seal, again.seal = nil, nil
			if err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("snapshot does not round trip: %+v then %+v, %v", s, again, err)
			}
		}
		if d, err := decodeDecision(buf); err == nil {
			again, err := decodeDecision(append(encodeDecisionBody(d.Decision), buf[len(buf)-sealLen:]...))
			if err != nil || !reflect.DeepEqual(again.Decision, d.Decision) {
				t.Fatalf("decision does not round trip: %+v then %+v, %v", d.Decision, again.Decision, err)
			}
		}
		if s, err := decodeState(buf); err == nil {
			var blobs [][]byte
			for _, st := range s.States {
				blobs = append(blobs, st.seal)
			}
			for _, d := range s.Deltas {
				blobs = append(blobs, d.seal)
			}
			for _, d := range s.Decisions {
				blobs = append(blobs, d.seal)
			}
			again, err := decodeState(encodeState(s.Certs, blobs))
			if err != nil || len(again.Certs) != len(s.Certs) || len(again.States) != len(s.States) || len(again.Deltas) != len(s.Deltas) ||
				len(again.Decisions) != len(s.Decisions) {
				t.Fatalf("state does not round trip: %+v then %+v, %v", s, again, err)
			}
		}
		if m, _, err := decodeMeta(buf); err == nil {
			// Duplicate label keys in the input decode to fewer labels, so
			// re-encoding can only shrink; it must still decode the same.
			m2, _, err := decodeMeta(append(encodeMetaBody(m), buf[len(buf)-sealLen:]...))
			if err != nil || !reflect.DeepEqual(m2, m) {
				t.Fatalf("meta does not round trip: %+v then %+v, %v", m, m2, err)
			}
		}
	})
}
