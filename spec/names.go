package spec

import "strings"

// The name and key syntaxes Kubernetes enforces (k8s.io/apimachinery/pkg/util/validation),
// written as byte loops rather than regular expressions because they run for
// every name of every object of every revision. Each rule returns "" for a valid
// value and otherwise says what the value must look like.

// nameRule checks the syntax of one name or key.
type nameRule func(string) string

const (
	dns1123LabelMaxLength     = 63
	dns1123SubdomainMaxLength = 253
	ianaSvcNameMaxLength      = 15
	qualifiedNameMaxLength    = 63
	labelValueMaxLength       = 63
	configMapKeyMaxLength     = 253
)

func isAlphaNum(c byte) bool { return isLowerAlphaNum(c) || c >= 'A' && c <= 'Z' }

func isLowerAlphaNum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isLowerLabel reports whether s is [a-z0-9]([-a-z0-9]*[a-z0-9])?.
func isLowerLabel(s string) bool {
	if s == "" || !isLowerAlphaNum(s[0]) || !isLowerAlphaNum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if !isLowerAlphaNum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// dns1123Label is the syntax of Namespace, container, volume and Service port names.
func dns1123Label(s string) string {
	if len(s) > dns1123LabelMaxLength || !isLowerLabel(s) {
		return "must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
	}
	return ""
}

// dns1123Subdomain is the syntax of most object names.
func dns1123Subdomain(s string) string {
	if len(s) > dns1123SubdomainMaxLength || !isSubdomain(s) {
		return "must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', each dot-separated part starting and ending with a letter or digit"
	}
	return ""
}

func isSubdomain(s string) bool {
	for part := range strings.SplitSeq(s, ".") {
		if !isLowerLabel(part) {
			return false
		}
	}
	return true
}

// dns1035Label is the syntax of Service names, which become DNS labels and must start with a letter.
func dns1035Label(s string) string {
	if len(s) > dns1123LabelMaxLength || !isLowerLabel(s) || !isLetter(s[0]) {
		return "must be a lowercase RFC 1035 label: at most 63 characters of a-z, 0-9 and '-', starting with a letter and ending with a letter or digit"
	}
	return ""
}

// ianaSvcName is the syntax of container port names (and named probe and target ports).
func ianaSvcName(s string) string {
	const msg = "must be an IANA service name: at most 15 characters of a-z, 0-9 and '-', with at least one letter, no leading, trailing or double '-'"
	if len(s) > ianaSvcNameMaxLength || !isLowerLabel(s) || strings.Contains(s, "--") {
		return msg
	}
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) {
			return ""
		}
	}
	return msg
}

// isLabelName reports whether s is ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9], the name part of
// label keys and the syntax of label values.
func isLabelName(s string) bool {
	if s == "" || !isAlphaNum(s[0]) || !isAlphaNum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if !isAlphaNum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// qualifiedName is the syntax of label and annotation keys and topology keys: an optional
// DNS subdomain prefix and a slash, then a name.
func qualifiedName(s string) string {
	name := s
	if prefix, rest, hasPrefix := strings.Cut(s, "/"); hasPrefix {
		if prefix == "" || len(prefix) > dns1123SubdomainMaxLength || !isSubdomain(prefix) {
			return "the prefix before '/' must be a lowercase RFC 1123 subdomain (e.g. example.com)"
		}
		name = rest
	}
	if len(name) > qualifiedNameMaxLength || !isLabelName(name) {
		return "must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit"
	}
	return ""
}

// labelValue is the syntax of label values: empty or a name of at most 63 characters.
func labelValue(s string) string {
	if s != "" && (len(s) > labelValueMaxLength || !isLabelName(s)) {
		return "must be empty or at most 63 characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending with a letter or digit"
	}
	return ""
}

// envVarName is the syntax of environment variable names and envFrom prefixes.
func envVarName(s string) string {
	const msg = "must be an environment variable name: A-Z, a-z, 0-9, '-', '_' and '.', not starting with a digit"
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return msg
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlphaNum(c) && c != '-' && c != '_' && c != '.' {
			return msg
		}
	}
	return ""
}

// configMapKey is the syntax of ConfigMap and Secret keys, which become file names in volumes.
func configMapKey(s string) string {
	const msg = "must be a key of at most 253 characters of A-Z, a-z, 0-9, '-', '_' and '.', and not '.', '..' or starting with '..'"
	if s == "" || len(s) > configMapKeyMaxLength || s == "." || strings.HasPrefix(s, "..") {
		return msg
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlphaNum(c) && c != '-' && c != '_' && c != '.' {
			return msg
		}
	}
	return ""
}
