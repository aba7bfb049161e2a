package schemas

import (
	"strings"
	"testing"

	"cuelang.org/go/cue"

	"github.com/berth/berth/schemas/names"
)

// The Go name rules decide as the CUE definitions they copy.
func TestNamesAgreeWithCUE(t *testing.T) {
	ref := newCUEReference(t)
	cases := []string{
		"", "a", "A", "0", "-", "a-", "-a", "a-b", "a--b", "a.b", "a..b", ".a", "a.", "a_b", "a/b", "../../etc", "..",
		"web-1", "Web", "a b", "a\x00b", "é", "a\nb", "prefix.io/key", "prefix.io/", "/key", "Prefix/key", "a/b/c",
		"k_.-8", "_k", "k_", strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253), strings.Repeat("a", 254),
		strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a", "x/" + strings.Repeat("a", 63), "x/" + strings.Repeat("a", 64),
	}
	for _, def := range []struct {
		name string
		is   func(string) bool
	}{
		{"#DNSLabel", names.IsDNS1123Label},
		{"#DNSSubdomain", names.IsDNS1123Subdomain},
		{"#LabelKey", names.IsLabelKey},
		{"#LabelValue", names.IsLabelValue},
	} {
		schema := ref.schema.LookupPath(cue.ParsePath(def.name))
		for _, n := range cases {
			want := schema.Unify(ref.ctx.Encode(n)).Validate(cue.Concrete(true)) == nil
			if got := def.is(n); got != want {
				t.Errorf("%s %q: Go says %v, CUE %v", def.name, n, got, want)
			}
		}
	}
}
