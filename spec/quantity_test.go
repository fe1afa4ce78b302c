package spec

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		in    string
		milli int64
		bad   bool
	}{
		{in: "100m", milli: 100},
		{in: "0.5", milli: 500},
		{in: "1", milli: 1000},
		{in: "64Mi", milli: 64 << 20 * 1000},
		{in: "1Gi", milli: 1 << 30 * 1000},
		{in: "1e3", milli: 1_000_000},
		{in: "1k", milli: 1_000_000},
		{in: "1.5Gi", milli: 3 << 29 * 1000},
		{in: "+2", milli: 2000},
		{in: "250u", milli: 1},   // a quarter of a milli, rounded up
		{in: "1n", milli: 1},     // rounded up, never to zero
		{in: "0", milli: 0},      // zero is a valid quantity
		{in: "2E-3", milli: 2},   // negative exponent
		{in: "12Xi", bad: true},  // unknown suffix
		{in: "-1", bad: true},    // negative
		{in: "", bad: true},      // empty
		{in: "1.2.3", bad: true}, // two dots
		{in: "Mi", bad: true},    // no digits
		{in: ".", bad: true},
		{in: "1e19", bad: true},                   // exponent beyond the supported range
		{in: "99999999999999999999Ei", bad: true}, // overflows int64 thousandths
		{in: "100 m", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			q, err := ParseQuantity(tt.in)
			if tt.bad {
				if err == nil || !errors.Is(err, errQuantity) || q.Err() == nil {
					t.Fatalf("ParseQuantity(%q) = %d, %v; want an invalid quantity error", tt.in, q.MilliValue(), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseQuantity(%q): %v", tt.in, err)
			}
			if q.MilliValue() != tt.milli || q.String() != tt.in {
				t.Fatalf("ParseQuantity(%q) = %d milli (%q), want %d", tt.in, q.MilliValue(), q.String(), tt.milli)
			}
		})
	}
}

func TestQuantityValueRoundsUp(t *testing.T) {
	if got := MustQuantity("1500m").Value(); got != 2 {
		t.Fatalf("Value of 1500m = %d, want 2", got)
	}
	if got := MustQuantity("64Mi").Value(); got != 64<<20 {
		t.Fatalf("Value of 64Mi = %d, want %d", got, 64<<20)
	}
}

func TestQuantityJSONKeepsText(t *testing.T) {
	var q Quantity
	if err := json.Unmarshal([]byte(`"12Xi"`), &q); err != nil {
		t.Fatal(err) // a bad quantity decodes and is reported by validation
	}
	if q.Err() == nil {
		t.Fatal("bad quantity decoded without Err")
	}
	out, err := json.Marshal(MustQuantity("250m"))
	if err != nil || string(out) != `"250m"` {
		t.Fatalf("Marshal = %s, %v", out, err)
	}
}
