package spec

import (
	"bytes"
	"fmt"
)

// The YAML parser builds a whole document as a tree of yaml.Node (about 200 bytes
// each) before checkShape can count its nodes, so a 4 MiB flat list of 2 million
// tiny items used to cost over 600 MiB before it was refused. scanShape refuses such
// a file first, in one pass that allocates nothing per token: it follows the YAML
// scanner (go.yaml.in/yaml/v3's scannerc.go) closely enough to count, for every
// document, a lower bound on its nodes, and to find the documents and nesting.
//
// The count is a lower bound, so that every refusal is true: each counted token
// stands for a distinct node of the tree. Scalars, aliases and flow collections
// count one each; the indicators "- ", "? " and ": " count the item, key or value
// they introduce (null when nothing follows), as an anchor or tag counts the node
// it is on, and then the content token that starts that node is not counted again. Block collections and the nulls of flow
// mappings ({a, b}) are not counted, so the tree has at most about three nodes per
// counted one: a document that passes costs at most a few times the node limit.
// What is inside quoted and block scalars and comments is skipped as the YAML
// scanner skips it, tracking the indentation of block collections as it does.

// shapeScanner is scanShape's state: a position in the file, and the YAML scanner's
// state that decides what the next bytes are.
type shapeScanner struct {
	data []byte
	opts LoadOptions
	pos  int
	line int // 1-based line of pos
	// lineStart is where pos's line starts; column() counts runes from it, as
	// YAML columns are, caching the count at colPos.
	lineStart, colPos, col int

	// indents are the columns of the open block collections, innermost last, as
	// the YAML scanner's indentation stack; flow is the depth of flow collections.
	indents []int
	flow    int
	// keyAllowed is set where a simple key (a key without "? ") may start, and
	// keyCol is the column of the one started on this line at flow level 0, or -1:
	// ": " opens a block mapping at that column.
	keyAllowed bool
	keyCol     int
	// counted is set after an indicator counted the node it introduces: the next
	// content token, if it starts that node, is not counted again.
	counted bool
	// plainOpen is set when a plain scalar ran to the end of its line and may go
	// on in the next.
	plainOpen bool

	docs             int // "---" markers so far: a lower bound on the documents
	nodes, nodesLine int // this document's count, and the line where it began
	shapeReport
}

// shapeReport is what scanShape finds: the largest count of a document's nodes,
// and the first limit exceeded, if any.
type shapeReport struct {
	most     int
	failMsg  string
	failLine int
}

// scanShape checks data's YAML documents against opts' limits on documents per
// file, nodes per document and depth, from a lower bound of each, before the
// parser builds anything. It scans up to the end or the first limit exceeded.
func scanShape(data []byte, opts LoadOptions) shapeReport {
	var indents [16]int // room for the nesting of real manifests, in one allocation
	s := shapeScanner{data: data, opts: opts, line: 1, keyCol: -1, keyAllowed: true, indents: indents[:0]}
	for s.pos < len(s.data) && s.failMsg == "" {
		s.scanLine()
	}
	return s.shapeReport
}

func (s *shapeScanner) fail(line int, format string, args ...any) {
	if s.failMsg == "" {
		s.failMsg, s.failLine = fmt.Sprintf(format, args...), line
	}
}

func (s *shapeScanner) top() int {
	if len(s.indents) == 0 {
		return -1
	}
	return s.indents[len(s.indents)-1]
}

// column is pos's column in runes.
func (s *shapeScanner) column() int {
	for ; s.colPos < s.pos; s.colPos++ {
		if s.data[s.colPos]&0xC0 != 0x80 {
			s.col++
		}
	}
	return s.col
}

// breakAt returns the length of the line break at i (\n, \r\n, \r or one of
// Unicode's NEL, LS and PS, which YAML also breaks lines at), or 0.
func (s *shapeScanner) breakAt(i int) int {
	d := s.data
	switch {
	case i >= len(d):
		return 0
	case d[i] == '\n':
		return 1
	case d[i] == '\r':
		if i+1 < len(d) && d[i+1] == '\n' {
			return 2
		}
		return 1
	case d[i] == 0xC2 && i+1 < len(d) && d[i+1] == 0x85:
		return 2
	case d[i] == 0xE2 && i+2 < len(d) && d[i+1] == 0x80 && (d[i+2] == 0xA8 || d[i+2] == 0xA9):
		return 3
	}
	return 0
}

// blankzAt reports whether i is a space, a tab, a line break or the end of data.
func (s *shapeScanner) blankzAt(i int) bool {
	return i >= len(s.data) || s.data[i] == ' ' || s.data[i] == '\t' || mayBreak(s.data[i]) && s.breakAt(i) > 0
}

// mayBreak reports whether a line break can start with byte c, which is cheaper
// to ask first.
func mayBreak(c byte) bool {
	return c == '\n' || c == '\r' || c == 0xC2 || c == 0xE2
}

// newLine moves pos past the break at pos onto the next line.
func (s *shapeScanner) newLine() {
	s.pos += max(s.breakAt(s.pos), 1)
	s.line++
	s.lineStart, s.colPos, s.col = s.pos, s.pos, 0
}

// skipToBreak moves pos to the end of its line.
func (s *shapeScanner) skipToBreak() {
	for s.pos < len(s.data) && !(mayBreak(s.data[s.pos]) && s.breakAt(s.pos) > 0) {
		s.pos++
	}
}

// skipSpaces moves pos past spaces and tabs and returns how many spaces led.
func (s *shapeScanner) skipSpaces() int {
	n := 0
	for s.pos < len(s.data) && s.data[s.pos] == ' ' {
		s.pos++
		n++
	}
	for s.pos < len(s.data) && (s.data[s.pos] == ' ' || s.data[s.pos] == '\t') {
		s.pos++
	}
	return n
}

// marker reports whether pos, at a line's start, holds a document marker (--- or ...).
func (s *shapeScanner) marker(c byte) bool {
	d, i := s.data, s.pos
	return i+2 < len(d) && d[i] == c && d[i+1] == c && d[i+2] == c && s.blankzAt(i+3)
}

// count records one more node of the current document.
func (s *shapeScanner) count() {
	if s.nodes == 0 {
		s.nodesLine = s.line
	}
	s.nodes++
	s.most = max(s.most, s.nodes)
	if s.nodes > s.opts.MaxNodesPerDocument {
		s.fail(s.nodesLine, "document has more than %d YAML nodes once aliases are expanded", s.opts.MaxNodesPerDocument)
	}
}

// content counts a token that starts a node (scalar, alias, flow collection)
// unless the indicator before it counted that node already.
func (s *shapeScanner) content() {
	if !s.counted {
		s.count()
	}
	s.counted = false
}

// indicator counts the node that "- ", "? " or ": " introduces, or that an
// anchor or tag is on.
func (s *shapeScanner) indicator() {
	s.count()
	s.counted = true
}

// saveKey notes where a simple key may start, as the YAML scanner's save_simple_key.
func (s *shapeScanner) saveKey() {
	if s.flow == 0 && s.keyAllowed {
		s.keyCol = s.column()
	}
}

// rollIndent opens a block collection at col when it is deeper than the current one.
func (s *shapeScanner) rollIndent(col int) {
	if s.flow == 0 && col > s.top() {
		s.indents = append(s.indents, col)
		s.checkDepth()
	}
}

func (s *shapeScanner) checkDepth() {
	if len(s.indents)+s.flow > s.opts.MaxDepth {
		s.fail(s.line, "document nests deeper than %d levels", s.opts.MaxDepth)
	}
}

// newDocument starts counting a document over.
func (s *shapeScanner) newDocument() {
	s.nodes, s.indents, s.flow = 0, s.indents[:0], 0
	s.counted, s.plainOpen, s.keyAllowed, s.keyCol = false, false, false, -1
}

// scanLine scans from the start of a line to the start of the next one with
// anything in it that is not a continuation of a quoted or block scalar.
func (s *shapeScanner) scanLine() {
	// The YAML scanner skips a byte order mark at the start of any line.
	for s.pos == s.lineStart && bytes.HasPrefix(s.data[s.pos:], []byte("\xef\xbb\xbf")) {
		s.pos += 3
		s.lineStart, s.colPos = s.pos, s.pos
	}
	if s.pos == s.lineStart {
		switch {
		case s.marker('-'):
			if s.docs++; s.docs > s.opts.MaxDocumentsPerFile {
				s.fail(s.line, "file has more than %d YAML documents", s.opts.MaxDocumentsPerFile)
				return
			}
			s.newDocument()
			s.pos += 3
		case s.marker('.'):
			s.newDocument()
			s.pos += 3
		case s.pos < len(s.data) && s.data[s.pos] == '%':
			s.skipToBreak() // a directive
		}
	}
	atStart := s.pos == s.lineStart
	indent := s.skipSpaces()
	if s.pos >= len(s.data) {
		return
	}
	if s.breakAt(s.pos) > 0 || s.data[s.pos] == '#' {
		if s.data[s.pos] == '#' {
			s.plainOpen = false
			s.skipToBreak()
		}
		if s.pos < len(s.data) {
			s.newLine()
		}
		return
	}
	if atStart {
		if s.plainOpen && (s.flow > 0 || indent > s.top()) {
			s.plain() // the plain scalar of the line above goes on
		} else if s.flow == 0 {
			s.plainOpen = false
			s.keyAllowed, s.keyCol = true, -1
			// A line indented less than a block collection closes it, and with it
			// any node an indicator introduced on a line above and left empty.
			for len(s.indents) > 0 && s.top() > indent {
				s.indents = s.indents[:len(s.indents)-1]
				s.counted = false
			}
		} else {
			s.keyCol = -1
		}
	}
	s.tokens()
}

// tokens scans the tokens of the rest of the line, and on past the line when a
// quoted or block scalar goes on, until pos is at the start of a new line.
func (s *shapeScanner) tokens() {
	for s.pos < len(s.data) && s.failMsg == "" {
		s.skipSpaces()
		if s.pos >= len(s.data) {
			return
		}
		if s.breakAt(s.pos) > 0 {
			s.newLine()
			return
		}
		c := s.data[s.pos]
		switch {
		case c == '#':
			s.skipToBreak()
		case c == '-' && s.blankzAt(s.pos+1):
			s.pos++
			if s.flow == 0 {
				s.rollIndent(s.column() - 1)
				s.indicator()
				s.keyAllowed, s.keyCol = true, -1
			}
		case c == '?' && (s.flow > 0 || s.blankzAt(s.pos+1)):
			s.rollIndent(s.column())
			s.pos++
			s.indicator()
			s.keyAllowed, s.keyCol = s.flow == 0, -1
		case c == ':' && (s.flow > 0 || s.blankzAt(s.pos+1)):
			if s.keyCol >= 0 {
				s.rollIndent(s.keyCol)
			} else {
				s.rollIndent(s.column())
			}
			s.pos++
			s.indicator()
			s.keyAllowed, s.keyCol = s.flow == 0, -1
		case c == ',':
			s.pos++
			s.keyAllowed, s.counted = true, false
		case c == '[' || c == '{':
			s.saveKey()
			s.content()
			s.pos++
			s.flow++
			s.checkDepth()
			s.keyAllowed = true
		case c == ']' || c == '}':
			s.pos++
			s.flow = max(s.flow-1, 0)
			s.keyAllowed, s.counted = false, false
		case c == '*' || c == '&' || c == '!':
			s.saveKey()
			switch {
			case c == '*':
				s.content()
			case !s.counted:
				// A node's anchor or tag counts the node, which may be empty (a
				// tagged null, in {!t , !t }), and its content is not counted again.
				s.indicator()
			}
			s.keyAllowed = false
			// A tag runs to a blank; an alias's or anchor's name is [0-9A-Za-z_-]+.
			for s.pos++; s.pos < len(s.data) && (c == '!' && !s.blankzAt(s.pos) || c != '!' && isAnchorChar(s.data[s.pos])); {
				s.pos++
			}
		case (c == '|' || c == '>') && s.flow == 0:
			s.content()
			s.blockScalar()
			return
		case c == '\'' || c == '"':
			s.saveKey()
			s.content()
			s.keyAllowed = false
			s.quoted(c)
		default:
			s.saveKey()
			s.content()
			s.keyAllowed = false
			s.plain()
		}
	}
}

func isAnchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_' || c == '-'
}

func isFlowIndicator(c byte) bool {
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}

// plain moves pos past (the rest of a line of) a plain scalar, as the YAML
// scanner's scan_plain_scalar: it ends at ": ", at " #", in a flow collection
// at one of ",?[]{}", and otherwise at the end of the line, where it may go on.
func (s *shapeScanner) plain() {
	s.plainOpen = false
	d := s.data
	for {
		for s.pos < len(d) && !s.blankzAt(s.pos) {
			c := d[s.pos]
			if c == ':' && s.blankzAt(s.pos+1) || s.flow > 0 && (c == '?' || isFlowIndicator(c)) {
				return
			}
			s.pos++
		}
		for s.pos < len(d) && (d[s.pos] == ' ' || d[s.pos] == '\t') {
			s.pos++
		}
		if s.pos >= len(d) || d[s.pos] == '#' {
			return
		}
		if s.breakAt(s.pos) > 0 {
			s.plainOpen = true
			return
		}
	}
}

// quoted moves pos past a single- or double-quoted scalar, which may span lines.
func (s *shapeScanner) quoted(q byte) {
	d := s.data
	for s.pos++; s.pos < len(d); {
		switch c := d[s.pos]; {
		case q == '"' && c == '\\':
			if s.breakAt(s.pos+1) > 0 {
				s.pos++
				s.newLine()
			} else {
				s.pos += 2
			}
		case c == q:
			s.pos++
			if q == '\'' && s.pos < len(d) && d[s.pos] == '\'' {
				s.pos++ // '' is an escaped quote
				continue
			}
			return
		case s.breakAt(s.pos) > 0:
			s.newLine()
		default:
			s.pos++
		}
	}
}

// blockScalar moves pos from a block scalar's indicator (| or >) to the first
// line after its content. The content's indentation is found as the YAML
// scanner finds it: the header's digit added to the enclosing block's, or else
// the deepest of the leading empty lines and the first non-empty one, at least
// one more than the enclosing block's and at least 1.
func (s *shapeScanner) blockScalar() {
	d := s.data
	increment := 0
	for s.pos++; s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-' || d[s.pos] >= '1' && d[s.pos] <= '9'); s.pos++ {
		if d[s.pos] != '+' && d[s.pos] != '-' {
			increment = int(d[s.pos] - '0')
		}
	}
	s.skipToBreak() // the header's comment, if any
	s.keyAllowed, s.keyCol, s.plainOpen = true, -1, false
	if s.pos >= len(d) {
		return
	}
	s.newLine()
	indent := 0
	if increment > 0 {
		indent = max(s.top(), 0) + increment
	} else {
		// Leading empty lines: the deepest sets the least indentation.
		deepest := 0
		for {
			n := 0
			for i := s.pos; i < len(d) && d[i] == ' '; i++ {
				n++
			}
			deepest = max(deepest, n)
			if s.breakAt(s.pos+n) == 0 {
				break
			}
			s.pos += n
			s.newLine()
		}
		indent = max(deepest, s.top()+1, 1)
	}
	// Content: lines indented at least indent, and empty lines among them.
	for s.pos < len(d) {
		n := 0
		for s.pos+n < len(d) && d[s.pos+n] == ' ' && n < indent {
			n++
		}
		if n < indent && s.breakAt(s.pos+n) == 0 && s.pos+n < len(d) {
			return // a line indented less: the content ended before it
		}
		s.pos += n
		s.skipToBreak()
		if s.pos < len(d) {
			s.newLine()
		}
	}
}
