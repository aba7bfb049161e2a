package objects

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Secret types of registry credentials, and the key each holds them in.
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	DockerConfigJSONKey        = ".dockerconfigjson"
	SecretTypeDockerCfg        = "kubernetes.io/dockercfg"
	DockerCfgKey               = ".dockercfg"
)

// DockerConfigKey is the key a Secret of secretType keeps registry
// credentials under; "" for a type that holds none.
func DockerConfigKey(secretType string) string {
	return map[string]string{SecretTypeDockerConfigJSON: DockerConfigJSONKey, SecretTypeDockerCfg: DockerCfgKey}[secretType]
}

// RegistryAuths are the credentials a Secret of a registry type holds;
// none for other types.
func RegistryAuths(s *Secret) ([]RegistryAuth, error) {
	key := DockerConfigKey(s.Type)
	if key == "" {
		return nil, nil
	}
	b, err := SecretValue(s, key)
	if err != nil {
		return nil, fmt.Errorf("a Secret of type %s needs the key %s in data or stringData", s.Type, key)
	}
	return ParseDockerConfig(s.Type, b)
}

// SecretData merges data (base64; Go's decoder skips the line breaks of
// wrapped values) and stringData, which wins as in Kubernetes.
func SecretData(s *Secret) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range s.Data {
		if b, err := base64.StdEncoding.DecodeString(v); err == nil {
			out[k] = b
		}
	}
	for k, v := range s.StringData {
		out[k] = []byte(v)
	}
	return out
}

// SecretValue is one key of SecretData.
func SecretValue(s *Secret, key string) ([]byte, error) {
	v, ok := SecretData(s)[key]
	if !ok {
		return nil, fmt.Errorf("secret %s has no key %s", s.Metadata.Name, key)
	}
	return v, nil
}

// RegistryAuth is one registry's credentials from a docker config.
type RegistryAuth struct {
	// Registry is the config's key as written: a host, perhaps with a
	// scheme, a path or a leading "*." (https://index.docker.io/v1/,
	// registry.example.com/team, *.example.com).
	Registry           string
	Username, Password string
}

type dockerAuth struct {
	Auth     string `json:"auth"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// ParseDockerConfig reads what a Secret of secretType holds: for
// dockerconfigjson {"auths": {registry: {...}}}, for the older dockercfg
// the inner map alone. Each entry has "auth" (base64 user:password) or
// username and password, as the kubelet reads them.
func ParseDockerConfig(secretType string, b []byte) ([]RegistryAuth, error) {
	var auths map[string]dockerAuth
	if secretType == SecretTypeDockerCfg {
		if err := json.Unmarshal(b, &auths); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", DockerCfgKey, err)
		}
	} else {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("%s is not a docker config: %v", DockerConfigJSONKey, err)
		}
		auths = cfg.Auths
	}
	var out []RegistryAuth
	for _, reg := range slices.Sorted(maps.Keys(auths)) {
		a := auths[reg]
		user, pass := a.Username, a.Password
		if a.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			u, p, ok := strings.Cut(string(dec), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("the auth of registry %q is not base64 of user:password", reg)
			}
			user, pass = u, p
		}
		out = append(out, RegistryAuth{Registry: reg, Username: user, Password: pass})
	}
	return out, nil
}
