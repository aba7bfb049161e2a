package runtime

import (
	"reflect"
	"testing"
)

// A container's own variable overrides a Service's of the same name, at
// the Service's place, as the kubelet's order has it.
func TestLastWins(t *testing.T) {
	got := lastWins([]string{"WEB_SERVICE_HOST=10.0.0.1", "A=1", "WEB_SERVICE_HOST=override", "B=2", "A=3"})
	if want := []string{"WEB_SERVICE_HOST=override", "A=3", "B=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// $(VAR) references expand as Kubernetes expands them (its expansion
// tests' cases).
func TestExpand(t *testing.T) {
	vars := map[string]string{"VAR_A": "A", "VAR_B": "B", "VAR_EMPTY": ""}
	for in, want := range map[string]string{
		"$(VAR_A)":                  "A",
		"___$(VAR_B)___":            "___B___",
		"$(VAR_A)-$(VAR_B)":         "A-B",
		"$(VAR_EMPTY)x":             "x",
		"$$(VAR_A)":                 "$(VAR_A)",
		"$$$(VAR_A)":                "$A",
		"$(UNKNOWN)":                "$(UNKNOWN)",
		"$(VAR_A":                   "$(VAR_A",
		"$VAR_A":                    "$VAR_A",
		"plain $ sign and $":        "plain $ sign and $",
		"$(VAR_A)$(UNKNOWN)$$$$(x)": "A$(UNKNOWN)$$(x)",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
	env, all := containerEnv(Container{ServiceEnv: []string{"WEB_SERVICE_HOST=10.0.0.1"},
		Env: []string{"URL=http://$(WEB_SERVICE_HOST):$(PORT)", "PORT=80", "SELF=$(POD_IP):$(PORT)"}, PodIPEnv: []string{"POD_IP"}}, "10.244.0.9")
	want := []string{"WEB_SERVICE_HOST=10.0.0.1", "URL=http://10.0.0.1:$(PORT)", "PORT=80", "SELF=10.244.0.9:80", "POD_IP=10.244.0.9"}
	if !reflect.DeepEqual(env, want) || all["SELF"] != "10.244.0.9:80" {
		t.Errorf("env %v, want %v", env, want)
	}
}
