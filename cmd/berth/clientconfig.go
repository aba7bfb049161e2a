package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/api"
)

// clientConfig is an admin client config, as `berth up` writes to
// DATA/admin.conf.
type clientConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

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
	if c.Server == "" || c.Token == "" {
		return nil, fmt.Errorf("%s: server and token are required", path)
	}
	return &c, nil
}

func writeClientConfig(path string, c clientConfig) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// clientFlag adds --config to a command and returns a constructor for the
// API client it names.
func clientFlag(cmd *cobra.Command) func() (*api.Client, error) {
	var path string
	cmd.Flags().StringVar(&path, "config", "", "client config (default $BERTH_CONFIG or ~/.config/berth/config)")
	return func() (*api.Client, error) {
		c, err := loadClientConfig(configPath(path))
		if err != nil {
			return nil, &exitError{2, err}
		}
		return api.NewClient(c.Server, c.Token), nil
	}
}
