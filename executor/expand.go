package executor

import "strings"

// Expand replaces $(VAR) references in s the way Kubernetes does for command, args and
// env values: a defined VAR is replaced by lookup's value, an undefined one is left as
// written, "$$" is an escaped "$" (so "$$(VAR)" yields the literal "$(VAR)"), and a "$"
// that starts no reference is kept.
func Expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				// An unterminated reference is kept as written.
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(next)
			i++
		}
	}
	return b.String()
}

// Argv is the process argv of a container, combining the Kubernetes command and args
// with the image's Entrypoint and Cmd as Kubernetes does:
//
//	neither set:  Entrypoint + Cmd
//	command only: command (the image's Cmd is ignored too)
//	args only:    Entrypoint + args
//	both:         command + args
func Argv(command, args, entrypoint, cmd []string) []string {
	var out []string
	switch {
	case len(command) > 0:
		out = append(out, command...)
		out = append(out, args...)
	case len(args) > 0:
		out = append(out, entrypoint...)
		out = append(out, args...)
	default:
		out = append(out, entrypoint...)
		out = append(out, cmd...)
	}
	return out
}
