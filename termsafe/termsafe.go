// Package termsafe makes untrusted text safe to print on a terminal. Commit messages,
// container logs and manifest text reach the CLI from people and programs the person
// reading them does not control; an escape sequence among them could retitle the
// window, rewrite what is already on screen, hide lines or, on some terminals, answer
// back keystrokes (kubectl's CVE-2021-25743 is the same class). The package only
// rewrites text; it does not decide what is untrusted: the CLI passes everything it
// prints through it, except `shoal logs --raw`.
package termsafe

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// String returns s with every byte a terminal could act on replaced by a visible escape:
// C0 controls other than newline and tab (ESC, CR, BEL, backspace, ...), DEL and the C1
// controls U+0080–U+009F become \u00XX, and bytes that are not UTF-8 (a lone 0x9b is CSI
// on 8-bit terminals) become \xXX. Everything else, including all printable Unicode, is
// kept. The \u00XX form is also a JSON string escape, so JSON stays valid JSON with the
// same value after passing through String.
func String(s string) string {
	return string(appendEscaped(nil, []byte(s)))
}

// safe reports whether no byte of b needs escaping, the common case kept allocation-free.
func safe(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

func appendEscaped(dst, b []byte) []byte {
	if safe(b) {
		return append(dst, b...)
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			dst = fmt.Appendf(dst, `\x%02x`, b[0])
		case r < 0x20 && r != '\n' && r != '\t', r >= 0x7f && r <= 0x9f:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}

// Writer escapes everything written to it as String does before passing it on. A UTF-8
// sequence split between two writes is held back until it is complete, so splitting a
// stream anywhere never changes what comes out; Flush writes what is held back.
type Writer struct {
	w       io.Writer
	pending []byte // the start of a UTF-8 sequence cut off by the end of the last write
}

// NewWriter returns a Writer escaping into w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Unwrap returns the writer underneath, for output that the user asked to get raw.
func (w *Writer) Unwrap() io.Writer { return w.w }

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	data := append(w.pending, p...)
	cut := len(data) - incompleteTail(data)
	out := appendEscaped(nil, data[:cut])
	w.pending = append([]byte(nil), data[cut:]...)
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes (escaped) a sequence still held back, which can only be an invalid one.
func (w *Writer) Flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	out := appendEscaped(nil, w.pending)
	w.pending = nil
	_, err := w.w.Write(out)
	return err
}

// incompleteTail is the length of a UTF-8 sequence at the end of b that is cut short
// and could still become valid: 0 to 3 bytes.
func incompleteTail(b []byte) int {
	for n := 1; n <= 3 && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0 // ASCII: nothing after it is a started sequence
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}
