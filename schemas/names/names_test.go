package names

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name             string
		label, subdomain bool
	}{
		{"web", true, true},
		{"web-1", true, true},
		{"0", true, true},
		{strings.Repeat("a", 63), true, true},
		{strings.Repeat("a", 64), false, true},
		{"web-1.default", false, true},
		{strings.Repeat("a.", 126) + "a", false, true},
		{strings.Repeat("a.", 127) + "a", false, false},
		{"", false, false},
		{".", false, false},
		{"..", false, false},
		{"../../../../var/log/dpkg", false, false},
		{"/etc/passwd", false, false},
		{"a/b", false, false},
		{"a..b", false, false},
		{".a", false, false},
		{"a.", false, false},
		{"-a", false, false},
		{"a-", false, false},
		{"A", false, false},
		{"a_b", false, false},
		{"a\x00", false, false},
		{"a\n", false, false},
		{"wéb", false, false},
		{"%00", false, false},
	} {
		if got := DNSLabel(tc.name) == nil; got != tc.label {
			t.Errorf("DNSLabel(%q) passes: %v, want %v", tc.name, got, tc.label)
		}
		if got := DNSSubdomain(tc.name) == nil; got != tc.subdomain {
			t.Errorf("DNSSubdomain(%q) passes: %v, want %v", tc.name, got, tc.subdomain)
		}
	}
}

// FuzzNames: whatever passes stays inside the directory it is joined to,
// and every label is a subdomain.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"web", "web-1.default", "..", "../x", "a/b", "\x00", "a..b", "A", "wéb", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		labelErr, subErr := DNSLabel(s), DNSSubdomain(s)
		if labelErr == nil && subErr != nil {
			t.Fatalf("%q is a label but not a subdomain", s)
		}
		if subErr != nil {
			return
		}
		if len(s) > 253 || labelErr == nil && len(s) > 63 {
			t.Fatalf("%q passes at %d bytes", s, len(s))
		}
		if !filepath.IsLocal(s) || strings.ContainsAny(s, "/\\\x00") || s == "." || s == ".." {
			t.Fatalf("%q passes but is not a plain file name", s)
		}
		if dir := filepath.Dir(filepath.Join("/logs", s+".log")); dir != "/logs" {
			t.Fatalf("%q joins to a file in %s", s, dir)
		}
	})
}
