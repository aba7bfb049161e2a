package auth

import (
	"testing"
	"time"
)

func TestValidID(t *testing.T) {
	_, tok, err := New(RoleReadOnly, "", Limits{}, time.Now())
	if err != nil || !ValidID(tok.ID) {
		t.Fatalf("a new token's ID %q is not valid: %v", tok.ID, err)
	}
	for _, id := range []string{"", "abcde", "abcdefg", "ABCDEF", "abc.ef", "../../", "abcde\x00"} {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
