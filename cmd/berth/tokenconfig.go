package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/berth/berth/appliance/auth"
)

// checkConfigTarget refuses a --write-config target before a token is made
// for it: a file that exists (without force), or a role whose token is no
// client's (join tokens).
func checkConfigTarget(path string, role auth.Role, force bool) error {
	if role != auth.RoleAdmin && role != auth.RoleReadOnly {
		return fmt.Errorf("--write-config: a %s token is not a client's (want --role admin or read-only)", role)
	}
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("--write-config: %s exists (--force replaces it)", path)
	}
	return nil
}

// writeClientConfig writes a client config for token, with the servers
// and CA of from (the config the command ran with), readable by its owner
// only. Without force an existing file is never replaced, even one that
// appeared since checkConfigTarget; with force it is replaced whole, by a
// rename, so no reader sees half a file.
func writeClientConfig(path string, from *clientConfig, token string, force bool) error {
	b, err := yaml.Marshal(clientConfig{Server: from.Server, Token: token, CA: from.CA})
	if err != nil {
		return err
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return errors.Join(err, f.Close())
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".berth-config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone by the rename when all went well
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
