package planner

import (
	"strconv"
	"strings"
)

const (
	// maxIDLen is the DNS label limit: instance IDs serve as hostnames and DNS labels.
	maxIDLen = 63
	// tagLen is the length of the hex tag that stands for namespace, name and spec hash.
	tagLen = 10
	// maxSlotDigits is the width of the largest slot (an int32); reserving it keeps every
	// ID of one workload on the same prefix however far it scales.
	maxSlotDigits = 10
	// maxNameLen is what is left of an ID for the workload name.
	maxNameLen = maxIDLen - 1 - tagLen - 1 - maxSlotDigits
)

// InstanceID names replica slot of a Deployment at one spec hash: "<name>-<tag>-<slot>".
//
// The tag is a short hash of the namespace, the name and the spec hash, so an ID changes
// when the spec does (the agent rolls old IDs to new ones), and two namespaces running the
// same Deployment with the same spec still get distinct IDs: the executor finds instances on
// a node by ID alone. IDs are DNS labels: at most 63 characters of [a-z0-9-]; a long name is
// cut, which the tag keeps unambiguous.
func InstanceID(namespace, workload, specHash string, slot int) string {
	return idPrefix(namespace, workload, specHash) + strconv.Itoa(slot)
}

// idPrefix is every InstanceID of a workload at one spec hash, without the slot.
func idPrefix(namespace, workload, specHash string) string {
	name := strings.Trim(dnsLabelChars(workload), "-")
	if len(name) > maxNameLen {
		name = strings.TrimRight(name[:maxNameLen], "-")
	}
	if name == "" {
		name = "x"
	}
	tag := hashString(namespace + "/" + workload + "/" + specHash)
	return name + "-" + hexDigits(tag, tagLen) + "-"
}

// slotOf returns the slot an ID names given the workload's ID prefix, or -1 when the ID is
// not one of that workload's at that spec hash.
func slotOf(id, prefix string) int {
	digits, ok := strings.CutPrefix(id, prefix)
	if !ok || digits == "" || len(digits) > maxSlotDigits || digits[0] == '0' && len(digits) > 1 {
		return -1
	}
	slot, err := strconv.Atoi(digits)
	if err != nil || slot < 0 {
		return -1
	}
	return slot
}

// dnsLabelChars lowercases s and replaces what a DNS label cannot hold with '-'.
func dnsLabelChars(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

// hexDigits renders the top n nibbles of h.
func hexDigits(h uint64, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[h>>60]
		h <<= 4
	}
	return string(b)
}
