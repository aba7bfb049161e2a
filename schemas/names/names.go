// Package names checks names against Kubernetes' rules for their kind, the
// rules schemas/cue/meta.cue states for specs (#DNSLabel, #DNSSubdomain,
// #LabelKey, #LabelValue; schemas' TestNamesAgreeWithCUE holds the two to
// each other). Code that puts a name it was sent into a file path, a label,
// a DNS name or a table key checks it here first: a valid name has no '/',
// no NUL, no upper case and is never "." or "..", so it stays inside the
// directory it is joined to. It imports nothing of CUE, so agents link it
// cheaply.
package names

import (
	"errors"
	"regexp"
)

var (
	label      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	subdomain  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelKey   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// Messages for the rules, in Kubernetes' words, to follow a name.
const (
	DNS1123LabelRule     = "must be a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
	DNS1123SubdomainRule = "must be a DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit"
)

// The errors never quote the name: it may be anything, of any length.
var (
	ErrDNSLabel     = errors.New(DNS1123LabelRule)
	ErrDNSSubdomain = errors.New(DNS1123SubdomainRule)
)

// IsDNS1123Label reports whether s is an RFC 1123 label: namespaces,
// container and port names.
func IsDNS1123Label(s string) bool { return len(s) <= 63 && label.MatchString(s) }

// IsDNS1123Subdomain reports whether s is an RFC 1123 subdomain: node
// names and the names of most objects, pods among them.
func IsDNS1123Subdomain(s string) bool { return len(s) <= 253 && subdomain.MatchString(s) }

// IsLabelKey reports whether s is a label key: an optional DNS-subdomain
// prefix and "/", then a name of at most 63 characters.
func IsLabelKey(s string) bool { return labelKey.MatchString(s) }

// IsLabelValue reports whether s is a label value: empty, or at most 63
// characters of the label name alphabet.
func IsLabelValue(s string) bool { return labelValue.MatchString(s) }

// DNSLabel is IsDNS1123Label as an error.
func DNSLabel(s string) error {
	if !IsDNS1123Label(s) {
		return ErrDNSLabel
	}
	return nil
}

// DNSSubdomain is IsDNS1123Subdomain as an error.
func DNSSubdomain(s string) error {
	if !IsDNS1123Subdomain(s) {
		return ErrDNSSubdomain
	}
	return nil
}
