package gossip

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleInstance(id string) InstanceInfo {
	return InstanceInfo{
		ID: id, Namespace: "shop", Workload: "web", Node: "a", SpecHash: "0123abcd",
		Ready: true, Running: true, Addr: "10.1.0.7",
		Ports: []Port{{Name: "http", Port: 8080, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}},
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	tests := []delta{
		{Owner: "a", Epoch: 1700000000123456789, Record: record{Counter: 7, Info: sampleInstance("web-1")}},
		{Owner: "a", Epoch: -5, Record: record{Counter: 1 << 40, Deleted: true, Info: InstanceInfo{ID: "web-2", Node: "a"}}},
		{Owner: "b", Epoch: 0, Record: record{Counter: 1, Info: InstanceInfo{ID: "x", Node: "b"}}},
	}
	for _, want := range tests {
		got, err := decodeDelta(encodeDelta(want))
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	want := []ownerState{
		{Owner: "a", Epoch: 9, Floor: 3, Records: []record{
			{Counter: 2, Info: sampleInstance("web-1")},
			{Counter: 4, Deleted: true, Info: InstanceInfo{ID: "web-2", Node: "a"}},
		}},
		{Owner: "b", Epoch: 10, Floor: 0, Records: []record{}},
	}
	got, err := decodeState(encodeState(want))
	if err != nil {
		t.Fatal(err)
	}
	want[0].Records[0].Info.Node = "a" // the decoder takes Node from the owner
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	want := Meta{
		Labels:   map[string]string{"kubernetes.io/hostname": "a", "topology.kubernetes.io/zone": "z1"},
		MilliCPU: 4000, MemoryBytes: 8 << 30, Revision: strings.Repeat("f", 40),
		APIAddr: "10.0.0.1:7070", DNSAddr: "10.0.0.1:53",
	}
	buf, err := encodeMeta(42, want)
	if err != nil {
		t.Fatal(err)
	}
	epoch, got, err := decodeMeta(buf)
	if err != nil || epoch != 42 || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d %+v %v, want 42 %+v", epoch, got, err, want)
	}
	t.Logf("meta with 2 labels and a 40-char revision: %d bytes of 512", len(buf))
}

func TestMetaTooLarge(t *testing.T) {
	labels := map[string]string{}
	for i := range 20 {
		labels[strings.Repeat("k", 10)+string(rune('a'+i))] = strings.Repeat("v", 20)
	}
	_, err := encodeMeta(1, Meta{Labels: labels})
	if !errors.Is(err, ErrMetaTooLarge) || !strings.Contains(err.Error(), "20 labels") {
		t.Fatalf("got %v, want ErrMetaTooLarge naming the label count", err)
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := encodeDelta(delta{Owner: "a", Epoch: 1, Record: record{Counter: 1, Info: sampleInstance("w")}})
	validState := encodeState([]ownerState{{Owner: "a", Epoch: 1, Floor: 1, Records: []record{{Counter: 1, Info: sampleInstance("w")}}}})
	tests := []struct {
		name string
		buf  []byte
	}{
		{"empty", nil},
		{"wrong kind", append([]byte{kindState}, valid[1:]...)},
		{"truncated", valid[:len(valid)-3]},
		{"trailing byte", append(append([]byte{}, valid...), 0)},
		{"huge string length", []byte{kindDelta, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"string past end", []byte{kindDelta, 10, 'a'}},
		{"overlong varint", append([]byte{kindDelta, 1, 'a'}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}...)},
		{"unknown flags", []byte{kindDelta, 1, 'a', 2, 1, 'i', 1, 0x80}},
		{"deleted with state flags", []byte{kindDelta, 1, 'a', 2, 1, 'i', 1, flagDeleted | flagReady}},
		{"port count beyond size", []byte{kindDelta, 1, 'a', 2, 1, 'i', 1, 0, 0, 0, 0, 0, 0xff, 0x01}},
		{"port beyond int32", []byte{kindDelta, 1, 'a', 2, 1, 'i', 1, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}},
		{"owner count beyond size", []byte{kindState, 0xff, 0xff, 0x03}},
		{"state truncated", validState[:len(validState)-1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errDelta := decodeDelta(tt.buf)
			_, errState := decodeState(tt.buf)
			if !errors.Is(errDelta, ErrMalformed) || !errors.Is(errState, ErrMalformed) {
				t.Fatalf("decodeDelta: %v, decodeState: %v; want ErrMalformed from both", errDelta, errState)
			}
		})
	}
	if _, _, err := decodeMeta([]byte{metaVersion + 1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown meta version: got %v, want ErrMalformed", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic or
// allocate beyond the input, and whatever decodes must re-encode to something
// that decodes to the same value.
func FuzzDecode(f *testing.F) {
	f.Add(encodeDelta(delta{Owner: "a", Epoch: 3, Record: record{Counter: 2, Info: sampleInstance("w")}}))
	f.Add(encodeDelta(delta{Owner: "a", Epoch: 3, Record: record{Counter: 2, Deleted: true, Info: InstanceInfo{ID: "w"}}}))
	f.Add(encodeState([]ownerState{{Owner: "a", Epoch: 1, Floor: 2, Records: []record{{Counter: 1, Info: sampleInstance("w")}}}}))
	meta, _ := encodeMeta(5, Meta{Labels: map[string]string{"a": "b"}, Revision: "abc"})
	f.Add(meta)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		if d, err := decodeDelta(buf); err == nil {
			again, err := decodeDelta(encodeDelta(d))
			if err != nil || !reflect.DeepEqual(again, d) {
				t.Fatalf("delta does not round trip: %+v then %+v, %v", d, again, err)
			}
		}
		if s, err := decodeState(buf); err == nil {
			again, err := decodeState(encodeState(s))
			if err != nil || !reflect.DeepEqual(again, s) {
				t.Fatalf("state does not round trip: %+v then %+v, %v", s, again, err)
			}
		}
		if epoch, m, err := decodeMeta(buf); err == nil {
			enc, err := encodeMeta(epoch, m)
			if err != nil {
				// Duplicate label keys in the input decode to fewer labels,
				// so re-encoding can only shrink; it must still fit.
				t.Fatalf("decoded meta does not re-encode: %v", err)
			}
			e2, m2, err := decodeMeta(enc)
			if err != nil || e2 != epoch || !reflect.DeepEqual(m2, m) {
				t.Fatalf("meta does not round trip: %+v then %+v, %v", m, m2, err)
			}
		}
	})
}
