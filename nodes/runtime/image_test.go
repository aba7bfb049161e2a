package runtime

import (
	"testing"

	"github.com/berth/berth/schemas/objects"
)

// Pull secret entries match images as the kubelet's keyring matches them.
func TestCredentialsMatch(t *testing.T) {
	auths := []objects.RegistryAuth{
		{Registry: "https://index.docker.io/v1/", Username: "hub"},
		{Registry: "registry.example.com", Username: "host"},
		{Registry: "registry.example.com/team", Username: "team"},
		{Registry: "*.corp.example", Username: "wild"},
		{Registry: "localhost:5000", Username: "port"},
	}
	for image, want := range map[string]string{
		"nginx":                      "hub",
		"docker.io/library/nginx:1":  "hub",
		"registry.example.com/app:1": "host",
		"registry.example.com/team/app@sha256:" + "0123456789012345678901234567890123456789012345678901234567890123": "team",
		"registry.example.com/teamwork/app": "host",
		"git.corp.example/x/y":              "wild",
		"a.b.corp.example/x":                "",
		"localhost:5000/app":                "port",
		"localhost/app":                     "",
		"quay.io/app":                       "",
	} {
		got, _ := credentials(image, auths)
		user := ""
		if got != nil {
			user = got.Username
		}
		if user != want {
			t.Errorf("%s: %q, want %q", image, user, want)
		}
	}
}
