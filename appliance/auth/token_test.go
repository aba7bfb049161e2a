package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	now    = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	format = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
)

func newToken(t testing.TB, role Role, ttl time.Duration) (string, Token) {
	t.Helper()
	secret, tok, err := New(role, "test", Limits{TTL: ttl}, now)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

func TestNew(t *testing.T) {
	secret, tok := newToken(t, RoleReadOnly, time.Hour)
	if !format.MatchString(secret) {
		t.Fatalf("secret %q is not in kubeadm's format", secret)
	}
	id, sec, err := Parse(secret)
	if err != nil || id != tok.ID {
		t.Fatalf("Parse = %q, %v; token id %q", id, err, tok.ID)
	}
	if tok.Role != RoleReadOnly || tok.Description != "test" || !tok.Created.Equal(now) || !tok.Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("token %+v", tok)
	}
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), sec) {
		t.Fatalf("stored token %s holds the secret", data)
	}

	_, forever := newToken(t, RoleAdmin, 0)
	if !forever.Expires.IsZero() {
		t.Fatalf("ttl 0 expires at %v", forever.Expires)
	}
	if data, _ := json.Marshal(forever); strings.Contains(string(data), "expires") || strings.Contains(string(data), "revoked") {
		t.Fatalf("zero fields serialised: %s", data)
	}

	if _, _, err := New("root", "", Limits{}, now); err == nil {
		t.Fatal("unknown role accepted")
	}
	if _, _, err := New(RoleAdmin, "", Limits{TTL: -time.Second}, now); err == nil {
		t.Fatal("negative ttl accepted")
	}
	// Uses count joins: a limit on another role's token would be ignored.
	for _, bad := range []struct {
		role Role
		uses int
	}{{RoleAdmin, 1}, {RoleReadOnly, 3}, {RoleMasterJoin, -1}} {
		if _, _, err := New(bad.role, "", Limits{Uses: bad.uses}, now); err == nil {
			t.Errorf("%s token with %d uses accepted", bad.role, bad.uses)
		}
	}
	// Secrets do not repeat, and every character of the alphabet turns up.
	seen, chars := map[string]bool{}, map[rune]bool{}
	for range 200 {
		s, _ := newToken(t, RoleAdmin, 0)
		if seen[s] {
			t.Fatalf("secret %q issued twice", s)
		}
		seen[s] = true
		for _, c := range strings.ReplaceAll(s, ".", "") {
			chars[c] = true
		}
	}
	if len(chars) != len(alphabet) {
		t.Fatalf("%d of %d characters used", len(chars), len(alphabet))
	}
}

// TestDefaultLimits: join tokens expire after 24 hours, as kubeadm's
// bootstrap tokens; a master join token works once, an agent join token
// for any number of workers; people's tokens last until revoked.
func TestDefaultLimits(t *testing.T) {
	for role, want := range map[Role]Limits{
		RoleMasterJoin: {TTL: 24 * time.Hour, Uses: 1},
		RoleAgentJoin:  {TTL: 24 * time.Hour},
		RoleAdmin:      {},
		RoleReadOnly:   {},
	} {
		if got := DefaultLimits(role); got != want {
			t.Errorf("DefaultLimits(%s) = %+v, want %+v", role, got, want)
		}
		if _, tok, err := New(role, "", DefaultLimits(role), now); err != nil || tok.Uses != want.Uses ||
			want.TTL > 0 && !tok.Expires.Equal(now.Add(want.TTL)) || want.TTL == 0 && !tok.Expires.IsZero() {
			t.Errorf("%s token with the default limits: %+v %v", role, tok, err)
		}
	}
}

// TestUse: each join counts; a token is refused once its uses are spent,
// at and after its expiry, and once revoked; the same join again is
// counted once.
func TestUse(t *testing.T) {
	secret, once, err := New(RoleMasterJoin, "", DefaultLimits(RoleMasterJoin), now)
	if err != nil {
		t.Fatal(err)
	}
	used, err := once.Use(now, "key-a")
	if err != nil || used.Used != 1 || once.Used != 0 {
		t.Fatalf("first use: %+v %v (the original %+v)", used, err, once)
	}
	if _, err := used.Use(now, "key-b"); !errors.Is(err, ErrUsedUp) {
		t.Fatalf("second use of a single-use token: %v", err)
	}
	if _, err := used.Use(now, ""); !errors.Is(err, ErrUsedUp) {
		t.Fatalf("second use of a single-use token, by nobody named: %v", err)
	}
	// The same join again (its answer was lost) is counted once, while
	// the token lives.
	if again, err := used.Use(now, "key-a"); err != nil || again.Used != 1 || len(again.UsedBy) != 1 {
		t.Fatalf("the same join again: %+v %v", again, err)
	}
	if _, err := used.Use(now.Add(JoinTTL), "key-a"); !errors.Is(err, ErrExpired) {
		t.Fatalf("the same join again after expiry: %v", err)
	}
	// Verify leaves the uses to Use: the same join may come again.
	if _, err := Verify(map[string]Token{used.ID: used}, secret, now); err != nil {
		t.Fatalf("Verify of a used-up token: %v", err)
	}
	if _, err := once.Use(now.Add(JoinTTL), ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("use at expiry: %v", err)
	}
	revoked := once
	revoked.Revoked = true
	if _, err := revoked.Use(now, ""); !errors.Is(err, ErrRevoked) {
		t.Fatalf("use of a revoked token: %v", err)
	}

	_, many := newToken(t, RoleAgentJoin, 0)
	for i := range 100 {
		if many, err = many.Use(now.Add(1000*time.Hour), "k"); err != nil || many.Used != i+1 {
			t.Fatalf("use %d of an unlimited, unexpiring token: %+v %v", i+1, many, err)
		}
	}
	_, three, _ := New(RoleAgentJoin, "", Limits{Uses: 3}, now)
	for i := range 3 {
		if three, err = three.Use(now, fmt.Sprint("key-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := three.Use(now, "key-3"); !errors.Is(err, ErrUsedUp) || !strings.Contains(err.Error(), "3 join(s)") {
		t.Fatalf("fourth use of a three-use token: %v", err)
	}
	_, admin := newToken(t, RoleAdmin, 0)
	if _, err := admin.Use(now, ""); err == nil {
		t.Fatal("an admin token was used for a join")
	}
}

func TestValidRole(t *testing.T) {
	for _, r := range []Role{RoleAdmin, RoleReadOnly, RoleMasterJoin, RoleAgentJoin} {
		if !ValidRole(r) {
			t.Errorf("%q is not valid", r)
		}
	}
	for _, r := range []Role{"", "Admin", "readonly", "root"} {
		if ValidRole(r) {
			t.Errorf("%q is valid", r)
		}
	}
}

func TestParse(t *testing.T) {
	if id, sec, err := Parse("abcdef.0123456789abcdef"); err != nil || id != "abcdef" || sec != "0123456789abcdef" {
		t.Fatalf("Parse = %q %q %v", id, sec, err)
	}
	for _, bad := range []string{
		"", ".", "abcdef", "abcdef.", "abcdef.0123456789abcde", "abcdef.0123456789abcdef0",
		"abcdefg.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef.0123456789ABCDEF",
		"abcdef-0123456789abcdef", "abc.ef.0123456789abcdef", "abcdef.0123456789abcde\xff",
		" bcdef.0123456789abcdef",
	} {
		_, _, err := Parse(bad)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v", bad, err)
		}
		if err != nil && bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("Parse(%q) error quotes the input: %v", bad, err)
		}
	}
}

func TestVerify(t *testing.T) {
	secret, tok := newToken(t, RoleAdmin, time.Hour)
	tokens := map[string]Token{tok.ID: tok}

	got, err := Verify(tokens, secret, now)
	if err != nil || got.ID != tok.ID || got.Role != RoleAdmin {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	if _, err := Verify(tokens, secret, now.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}

	otherSecret, _ := newToken(t, RoleAdmin, 0)
	wrong := tok.ID + otherSecret[idLen:]
	revoked := tok
	revoked.Revoked = true
	usedUp := tok
	usedUp.Uses, usedUp.Used = 2, 2

	for _, tc := range []struct {
		name   string
		tokens map[string]Token
		secret string
		at     time.Time
		want   error
	}{
		{"malformed", tokens, "not-a-token", now, ErrMalformed},
		{"unknown id", tokens, otherSecret, now, ErrUnknown},
		{"wrong secret", tokens, wrong, now, ErrMismatch},
		{"revoked", map[string]Token{tok.ID: revoked}, secret, now, ErrRevoked},
		{"expired", tokens, secret, now.Add(time.Hour), ErrExpired},
		{"wrong secret of a used-up token", map[string]Token{tok.ID: usedUp}, wrong, now, ErrMismatch},
		// Revocation and expiry are only told to the secret's holder.
		{"wrong secret of a revoked token", map[string]Token{tok.ID: revoked}, wrong, now, ErrMismatch},
		{"wrong secret of an expired token", tokens, wrong, now.Add(2 * time.Hour), ErrMismatch},
		{"stored hash damaged", map[string]Token{tok.ID: {ID: tok.ID, Hash: tok.Hash[:10], Role: RoleAdmin}}, secret, now, ErrMismatch},
		{"no stored hash", map[string]Token{tok.ID: {ID: tok.ID, Role: RoleAdmin}}, secret, now, ErrMismatch},
		{"nil map", nil, secret, now, ErrUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tc.tokens, tc.secret, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			for _, sentinel := range []error{ErrMalformed, ErrUnknown, ErrMismatch, ErrRevoked, ErrExpired, ErrUsedUp} {
				if sentinel != tc.want && errors.Is(err, sentinel) {
					t.Fatalf("%v also matches %v", err, sentinel)
				}
			}
			if !reflect.DeepEqual(got, Token{}) {
				t.Fatalf("failed Verify returned %+v", got)
			}
			if msg := err.Error(); strings.Contains(msg, tok.Hash) || strings.Contains(msg, tc.secret) {
				t.Fatalf("error reveals the hash or the token: %s", msg)
			}
			if _, sec, perr := Parse(tc.secret); perr == nil && strings.Contains(err.Error(), sec) {
				t.Fatalf("error reveals the secret: %s", err)
			}
		})
	}
}

// FuzzVerify: Parse accepts exactly kubeadm's format and splits it back
// into its input; Verify accepts exactly the one real secret.
func FuzzVerify(f *testing.F) {
	secret, tok := newToken(f, RoleAgentJoin, time.Hour)
	tokens := map[string]Token{tok.ID: tok}
	for _, s := range []string{secret, tok.ID + ".0000000000000000", "abcdef.0123456789abcdef", "", ".", strings.ToUpper(secret)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, sec, err := Parse(s)
		if format.MatchString(s) != (err == nil) {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if err == nil && id+"."+sec != s {
			t.Fatalf("Parse(%q) = %q, %q", s, id, sec)
		}
		got, err := Verify(tokens, s, now)
		if (err == nil) != (s == secret) {
			t.Fatalf("Verify(%q) = %v", s, err)
		}
		if err == nil && !reflect.DeepEqual(got, tok) {
			t.Fatalf("Verify(%q) = %+v", s, got)
		}
	})
}
