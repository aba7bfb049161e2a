package boot

import (
	"context"
	"strings"
	"testing"
)

// The status block carries what an operator needs without a login: the
// API address, the RAM warning, a generated token, the master's state.
func TestRender(t *testing.T) {
	f := &Facts{Version: "v1", Listen: ":7443", Addresses: []string{"10.0.2.15"}, RAM: true, Storage: ramBanner,
		Token: strings.Repeat("ab", 32),
		Status: func(context.Context) (string, string, string, error) {
			return "leader", "0123abcd", "synced http://git/x", nil
		}}
	out := render(context.Background(), f)
	for _, want := range []string{"https://10.0.2.15:7443", "RUNNING FROM RAM", "token     " + strings.Repeat("ab", 32),
		"role      leader", "revision  0123abcd", "sync      synced http://git/x"} {
		if !strings.Contains(out, want) {
			t.Errorf("status block lacks %q:\n%s", want, out)
		}
	}
}
