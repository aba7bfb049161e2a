package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance"
	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/pki"
)

// clientConfig is a client config, as masters write to DATA/admin.conf:
// the masters' URLs (comma-separated), a token and the cluster CA.
type clientConfig = appliance.AdminConfig

// configPath picks the config the way kubectl does: the flag, then
// $BERTH_CONFIG, then ~/.config/berth/config.
func configPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("BERTH_CONFIG"); env != "" {
		return env
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "berth", "config")
}

func loadClientConfig(path string) (*clientConfig, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no client config at %s (use --config, $BERTH_CONFIG, or the admin.conf that `berth up` writes)", path)
	}
	if err != nil {
		return nil, err
	}
	var c clientConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Server == "" || c.Token == "" || c.CA == "" {
		return nil, fmt.Errorf("%s: server, token and ca are required", path)
	}
	return &c, nil
}

// clientFlag adds --config to a command and returns a constructor for the
// API client it names.
func clientFlag(cmd *cobra.Command) func() (*api.Client, error) {
	var path string
	cmd.Flags().StringVar(&path, "config", "", "client config (default $BERTH_CONFIG or ~/.config/berth/config)")
	return func() (*api.Client, error) { return newClient(path) }
}

// newClient is the API client of the config that flag (--config) names.
func newClient(flag string) (*api.Client, error) {
	p := configPath(flag)
	c, err := loadClientConfig(p)
	if err != nil {
		return nil, &exitError{2, err}
	}
	tc, err := pki.ClientTLS([]byte(c.CA), nil, nil, pki.OrgMasters)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("%s: ca: %w", p, err)}
	}
	return api.NewClient(c.Server, c.Token, api.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}})), nil
}
