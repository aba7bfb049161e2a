// Package names checks names against Kubernetes' rules for their kind, the
// rules schemas/cue/meta.cue states for specs (#DNSLabel, #DNSSubdomain).
// Code that puts a name it was sent into a file path, a label or a key
// checks it here first: a valid name has no '/', no NUL, no upper case and
// is never "." or "..", so it stays inside the directory it is joined to.
package names

import (
	"errors"
	"regexp"
)

var (
	label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// The errors never quote the name: it may be anything, of any length.
var (
	ErrDNSLabel     = errors.New("must be a DNS label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit")
	ErrDNSSubdomain = errors.New("must be a DNS subdomain: at most 253 characters, DNS labels joined by '.'")
)

// DNSLabel checks an RFC 1123 label: namespaces, container and port names.
func DNSLabel(s string) error {
	if len(s) > 63 || !label.MatchString(s) {
		return ErrDNSLabel
	}
	return nil
}

// DNSSubdomain checks an RFC 1123 subdomain: the names of most objects,
// pods among them.
func DNSSubdomain(s string) error {
	if len(s) > 253 || !subdomain.MatchString(s) {
		return ErrDNSSubdomain
	}
	return nil
}
