package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth/berth/appliance"
)

func TestRepoFlagsPasswordFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("ghp_abc\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)

	var cfg appliance.Config
	f := repoFlags{repo: "https://git.example/config.git", username: "x-access-token", passwordFile: good}
	if err := f.apply(&cfg); err != nil || cfg.RepoPassword != "ghp_abc" || cfg.RepoUsername != "x-access-token" || cfg.Repo != f.repo {
		t.Fatalf("apply: %v, %+v", err, cfg)
	}
	for file, want := range map[string]string{filepath.Join(dir, "missing"): "no such file", empty: "is empty"} {
		f.passwordFile = file
		if err := f.apply(&cfg); err == nil || !strings.Contains(err.Error(), "--repo-password-file") || !strings.Contains(err.Error(), want) {
			t.Errorf("apply with %s: %v, want an error naming the flag and %q", file, err, want)
		}
	}
}

func TestRepoFlagsWebhookSecretFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "secret")
	os.WriteFile(good, []byte("hook-secret\r\n"), 0o600)
	var cfg appliance.Config
	f := repoFlags{repo: "/srv/config", webhookSecretFile: good, webhookAllowUnsigned: true}
	if err := f.apply(&cfg); err != nil || string(cfg.WebhookSecret) != "hook-secret" || !cfg.WebhookAllowUnsigned {
		t.Fatalf("apply: %v, %+v", err, cfg)
	}
	f.webhookSecretFile = filepath.Join(dir, "missing")
	if err := f.apply(&cfg); err == nil || !strings.Contains(err.Error(), "--webhook-secret-file") {
		t.Errorf("a missing secret file: %v", err)
	}
}
