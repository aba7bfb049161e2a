package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth/berth/appliance"
)

// tokenRow finds the `berth token list` row of token id.
func tokenRow(t *testing.T, conf, id string) []string {
	t.Helper()
	out, code := run(t, "token", "list", "--config", conf)
	if code != 0 {
		t.Fatalf("token list: %d %s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			return f
		}
	}
	t.Fatalf("token list has no %s:\n%s", id, out)
	return nil
}

// TestTokenCommands: `berth token create` gives join tokens their roles'
// limits unless --ttl and --uses say otherwise, `list` shows expiry and
// uses, `revoke` revokes; a limit that cannot apply is refused.
func TestTokenCommands(t *testing.T) {
	_, conf := startTestMaster(t, appliance.Config{})
	secret := regexp.MustCompile(`^([a-z0-9]{6})\.[a-z0-9]{16}\n$`)
	create := func(args ...string) string {
		t.Helper()
		out, code := run(t, append([]string{"token", "create", "--config", conf}, args...)...)
		sm := secret.FindStringSubmatch(out)
		if code != 0 || sm == nil {
			t.Fatalf("token create %v: %d %q", args, code, out)
		}
		return sm[1]
	}
	// ID ROLE CREATED EXPIRES [(expired)] USED LEFT REVOKED [DESCRIPTION]
	day := time.Now().Add(24 * time.Hour)
	for _, tc := range []struct {
		args             []string
		expires          time.Time // zero: never
		used, left, revd string
	}{
		{[]string{"--role", "master-join"}, day, "0", "1", "false"},
		{[]string{"--role", "agent-join"}, day, "0", "any", "false"},
		{[]string{"--role", "agent-join", "--uses", "5", "--ttl", "1h"}, time.Now().Add(time.Hour), "0", "5", "false"},
		{[]string{"--role", "master-join", "--uses", "0", "--ttl", "0"}, time.Time{}, "0", "any", "false"},
		{[]string{"--role", "read-only"}, time.Time{}, "-", "-", "false"},
	} {
		row := tokenRow(t, conf, create(tc.args...))
		if tc.expires.IsZero() {
			if row[3] != "never" {
				t.Errorf("%v: expires %s, want never", tc.args, row[3])
			}
		} else if exp, err := time.Parse(time.RFC3339, row[3]); err != nil || exp.Sub(tc.expires).Abs() > time.Minute {
			t.Errorf("%v: expires %s, want about %s", tc.args, row[3], tc.expires.UTC().Format(time.RFC3339))
		}
		if got := strings.Join(row[4:7], " "); got != tc.used+" "+tc.left+" "+tc.revd {
			t.Errorf("%v: USED LEFT REVOKED = %s, want %s %s %s", tc.args, got, tc.used, tc.left, tc.revd)
		}
	}
	id := create("--role", "agent-join")
	if out, code := run(t, "token", "revoke", id, "--config", conf); code != 0 || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("token revoke: %d %s", code, out)
	}
	if row := tokenRow(t, conf, id); row[6] != "true" {
		t.Errorf("revoked token listed as %v", row)
	}
	for _, bad := range [][]string{
		{"--role", "admin", "--uses", "1"},
		{"--role", "agent-join", "--uses", "-1"},
		{"--role", "master-join", "--ttl", "-1h"},
		{"--role", "master-join", "--ttl", "soon"},
	} {
		if out, code := run(t, append([]string{"token", "create", "--config", conf}, bad...)...); code == 0 {
			t.Errorf("token create %v succeeded: %s", bad, out)
		}
	}
}
