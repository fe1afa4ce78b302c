package termsafe

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "deploy v2: fix the cache", "deploy v2: fix the cache"},
		{"newline and tab kept", "a\tb\nc\n", "a\tb\nc\n"},
		{"unicode kept", "héllo → 世界 🐟", "héllo → 世界 🐟"},
		{"colour", "\x1b[31mred\x1b[0m", `\u001b[31mred\u001b[0m`},
		{"window title (OSC)", "\x1b]0;pwned\x07", `\u001b]0;pwned\u0007`},
		{"carriage return hides a line", "evil\rgood", `evil\u000dgood`},
		{"backspace", "ab\bc", `ab\u0008c`},
		{"NUL", "a\x00b", `a\u0000b`},
		{"DEL", "a\x7fb", `a\u007fb`},
		{"C1 CSI as UTF-8", "a\u009b31mb", `a\u009b31mb`},
		{"C1 NEL", "a\u0085b", `a\u0085b`},
		{"first printable after C1 kept", "\u00a0", "\u00a0"},
		{"lone 8-bit CSI byte", "a\x9b31m", `a\x9b31m`},
		{"invalid UTF-8", "\xff\xfe", `\xff\xfe`},
		{"truncated sequence", "\xe4\xb8", `\xe4\xb8`},
		{"escape of the escape is not undone", `\u001b`, `\u001b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// JSON that went through String is still JSON with the same value.
func TestStringKeepsJSON(t *testing.T) {
	in, _ := json.Marshal(map[string]string{"message": "a\x1b[2Jb\u009b\x7f\r\n"})
	var before, after map[string]string
	json.Unmarshal(in, &before)
	if err := json.Unmarshal([]byte(String(string(in))), &after); err != nil {
		t.Fatalf("escaped JSON does not parse: %v", err)
	}
	if before["message"] != after["message"] {
		t.Errorf("value changed: %q → %q", before["message"], after["message"])
	}
}

// Cutting a stream at any byte gives the same output as writing it whole.
func TestWriterSplits(t *testing.T) {
	in := []byte("ok 世界 \x1b[31m \u009b \xff 🐟 end\xe4")
	want := String(string(in))
	for cut := 0; cut <= len(in); cut++ {
		var out bytes.Buffer
		w := NewWriter(&out)
		w.Write(in[:cut])
		w.Write(in[cut:])
		w.Flush()
		if out.String() != want {
			t.Errorf("cut at %d: %q, want %q", cut, out.String(), want)
		}
	}
}

func BenchmarkStringClean(b *testing.B) {
	line := []byte("2026-01-02T03:04:05Z INFO request served path=/api/v1/items status=200 took=3ms\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		appendEscaped(nil, line)
	}
}
