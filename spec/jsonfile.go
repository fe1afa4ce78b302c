package spec

import "bytes"

// A repository holds JSON files that are not manifests (package.json, tsconfig.json,
// Grafana dashboards), so a *.json file loads only when it looks like a Kubernetes
// object or List: when its top level is an object with an apiVersion and a kind key.
// jsonManifestKeys finds those keys in one pass that allocates nothing, skipping nested
// values without building them, before the file is parsed (as YAML, of which JSON is a
// subset, so that diagnostics have lines as for any manifest).

// jsonManifestKeys reports which of apiVersion and kind data's top-level object has, as
// far as data is valid JSON: a syntax error or a top level that is not an object ends
// the scan with what was found before it. Keys are compared as written, so an escaped
// spelling ("kin\u0064") does not count.
func jsonManifestKeys(data []byte) (apiVersion, kind bool) {
	s := jsonScanner{data: bytes.TrimPrefix(data, []byte("\uFEFF"))} // a byte order mark, as YAML allows
	if s.skipSpace(); !s.eat('{') {
		return false, false
	}
	for {
		if s.skipSpace(); s.eat('}') {
			return apiVersion, kind
		}
		key, ok := s.str()
		if !ok {
			return apiVersion, kind
		}
		switch string(key) { // the conversion does not allocate in a switch
		case "apiVersion":
			apiVersion = true
		case "kind":
			kind = true
		}
		if s.skipSpace(); !s.eat(':') || !s.value() {
			return apiVersion, kind
		}
		if s.skipSpace(); !s.eat(',') {
			return apiVersion, kind
		}
	}
}

// jsonScanner is jsonManifestKeys' position in data.
type jsonScanner struct {
	data []byte
	pos  int
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// eat moves past c when it is next.
func (s *jsonScanner) eat(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// str moves past a string and returns its raw contents, escapes left as written.
func (s *jsonScanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.pos
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
		case '"':
			s.pos++
			return s.data[start : s.pos-1], true
		default:
			s.pos++
		}
	}
	return nil, false
}

// value moves past one value of any kind, nested ones by counting brackets outside
// strings, so that depth costs nothing.
func (s *jsonScanner) value() bool {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case '"':
				if _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.pos++
					return true
				}
			}
			s.pos++
		}
		return false
	default: // a number, true, false or null: up to the next delimiter
		start := s.pos
		for s.pos < len(s.data) {
			switch s.data[s.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.pos > start
			}
			s.pos++
		}
		return s.pos > start
	}
}

// skipJSON says whether a *.json file is not to be loaded as a manifest: silently when
// its top level has neither apiVersion nor kind (package.json, a dashboard), with a
// warning when it has only one of them, as a manifest missing the other would.
func skipJSON(file string, data []byte) (bool, Diagnostics) {
	apiVersion, kind := jsonManifestKeys(data)
	switch {
	case apiVersion && kind:
		return false, nil
	case apiVersion || kind:
		has, lacks := "apiVersion", "kind"
		if kind {
			has, lacks = lacks, has
		}
		return true, Diagnostics{{Severity: SeverityWarning, File: file,
			Message: "JSON file has " + has + " but no " + lacks + " at its top level: not a manifest, skipped"}}
	}
	return true, nil
}
