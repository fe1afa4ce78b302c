package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Bounds of CPU and memory quantities (requests, limits, emptyDir sizes): far above what
// any machine has, and low enough that every figure derived from them (CFS quotas in
// microseconds, shares, sums over many replicas) fits an int64 with room to spare.
const (
	// MaxCPUMilli is 100,000 CPUs.
	MaxCPUMilli int64 = 100_000 * 1000
	// MaxMemoryBytes is 1 PiB.
	MaxMemoryBytes int64 = 1 << 50
)

// Quantity is a Kubernetes resource quantity such as "100m", "0.5", "64Mi" or "1e3".
// It keeps the text it was written as; a malformed one decodes without error and
// is reported by validation with its field path, so that decoding can carry on.
type Quantity struct {
	raw   string
	milli int64 // value × 1000, rounded up
	err   error
}

// ParseQuantity parses s in Kubernetes quantity syntax.
func ParseQuantity(s string) (Quantity, error) {
	milli, err := parseMilli(s)
	if err != nil {
		return Quantity{raw: s, err: err}, err
	}
	return Quantity{raw: s, milli: milli}, nil
}

// MustQuantity is ParseQuantity for constants in code and tests; it panics on bad input.
func MustQuantity(s string) Quantity {
	q, err := ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

// String returns the quantity as written.
func (q Quantity) String() string { return q.raw }

// Err returns why the quantity is malformed, or nil.
func (q Quantity) Err() error { return q.err }

// MilliValue returns the value in thousandths (millicores for CPU), rounded up.
func (q Quantity) MilliValue() int64 { return q.milli }

// Value returns the value in whole units (bytes for memory), rounded up. It cannot
// overflow: rounding up by adding 999 first would wrap a value near the int64 limit to a
// negative one, which every bound check would then let through.
func (q Quantity) Value() int64 {
	v := q.milli / 1000
	if q.milli%1000 > 0 {
		v++
	}
	return v
}

// IsZero reports whether the quantity is absent or zero.
func (q Quantity) IsZero() bool { return q.milli == 0 }

// MarshalJSON writes the quantity as written.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(q.raw) }

// UnmarshalJSON accepts a JSON string or number; a bad quantity is kept for validation to report.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	*q, _ = ParseQuantity(s)
	return nil
}

var errQuantity = errors.New("invalid quantity")

var quantitySuffixes = map[string]*big.Rat{
	"n": big.NewRat(1, 1_000_000_000), "u": big.NewRat(1, 1_000_000), "m": big.NewRat(1, 1000), "": big.NewRat(1, 1),
	"k": big.NewRat(1e3, 1), "M": big.NewRat(1e6, 1), "G": big.NewRat(1e9, 1), "T": big.NewRat(1e12, 1),
	"P": big.NewRat(1e15, 1), "E": big.NewRat(1e18, 1),
	"Ki": big.NewRat(1<<10, 1), "Mi": big.NewRat(1<<20, 1), "Gi": big.NewRat(1<<30, 1), "Ti": big.NewRat(1<<40, 1),
	"Pi": big.NewRat(1<<50, 1), "Ei": big.NewRat(1<<60, 1),
}

// milliMultipliers are the suffixes that turn an integer into a whole number of
// thousandths, for the fast path of parseMilli.
var milliMultipliers = map[string]int64{
	"m": 1, "": 1000, "k": 1e6, "M": 1e9, "G": 1e12, "T": 1e15,
	"Ki": 1000 << 10, "Mi": 1000 << 20, "Gi": 1000 << 30, "Ti": 1000 << 40,
}

// parseMilliInt parses the integer-with-suffix quantities ("100m", "64Mi", "2")
// that nearly every manifest writes, without math/big.
func parseMilliInt(s string) (int64, bool) {
	i := 0
	for i < len(s) && i < 15 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	mult, ok := milliMultipliers[s[i:]]
	if i == 0 || !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, false
	}
	return n * mult, true
}

// parseMilli returns s × 1000 rounded up; negative quantities are refused.
func parseMilli(s string) (int64, error) {
	if milli, ok := parseMilliInt(s); ok {
		return milli, nil
	}
	bad := fmt.Errorf("%w %q", errQuantity, s)
	if s == "" || len(s) > 64 {
		return 0, bad
	}
	num := s
	if num[0] == '+' {
		num = num[1:]
	}
	i := 0
	for i < len(num) && (num[i] >= '0' && num[i] <= '9' || num[i] == '.') {
		i++
	}
	digits, suffix := num[:i], num[i:]
	if digits == "" || digits == "." || strings.Count(digits, ".") > 1 {
		return 0, bad
	}
	value, ok := new(big.Rat).SetString(digits)
	if !ok {
		return 0, bad
	}
	if mult, ok := quantitySuffixes[suffix]; ok {
		value.Mul(value, mult)
	} else if suffix[0] == 'e' || suffix[0] == 'E' {
		exp, err := strconv.Atoi(suffix[1:])
		if err != nil || exp < -18 || exp > 18 {
			return 0, bad
		}
		scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp))), nil))
		if exp < 0 {
			scale.Inv(scale)
		}
		value.Mul(value, scale)
	} else {
		return 0, bad
	}
	value.Mul(value, big.NewRat(1000, 1))
	ceil := new(big.Int).Quo(value.Num(), value.Denom())
	if new(big.Rat).SetInt(ceil).Cmp(value) < 0 {
		ceil.Add(ceil, big.NewInt(1))
	}
	if !ceil.IsInt64() {
		return 0, fmt.Errorf("%w %q: too large", errQuantity, s)
	}
	return ceil.Int64(), nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
