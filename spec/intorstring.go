package spec

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// IntOrString holds a port number or name, or a count or percentage ("25%").
type IntOrString struct {
	IsString bool
	Int      int32
	Str      string
}

// FromInt returns an IntOrString holding n.
func FromInt(n int32) IntOrString { return IntOrString{Int: n} }

// FromString returns an IntOrString holding s.
func FromString(s string) IntOrString { return IntOrString{IsString: true, Str: s} }

// String renders the value as written.
func (v IntOrString) String() string {
	if v.IsString {
		return v.Str
	}
	return strconv.Itoa(int(v.Int))
}

// MarshalJSON writes a JSON number or string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

// UnmarshalJSON accepts a JSON number or string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.Str)
	}
	v.IsString = false
	return json.Unmarshal(b, &v.Int)
}

// ScaledValue resolves a count or percentage against total. Percentages round up
// when roundUp is set (maxSurge) and down otherwise (maxUnavailable), as Kubernetes does.
func (v IntOrString) ScaledValue(total int, roundUp bool) (int, error) {
	if !v.IsString {
		return int(v.Int), nil
	}
	pct, ok := strings.CutSuffix(v.Str, "%")
	n, err := strconv.Atoi(pct)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("invalid value %q: want an integer or a percentage", v.Str)
	}
	if roundUp {
		return (n*total + 99) / 100, nil
	}
	return n * total / 100, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
