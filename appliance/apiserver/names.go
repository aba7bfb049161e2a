package apiserver

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth/berth/appliance/auth"
	"github.com/berth/berth/schemas/names"
)

// nameRule is the Kubernetes rule for one kind of name. Names reach file
// paths on the nodes, labels, DNS names, certificates and the state's
// tables: each is checked where it enters, with a 400 that says the rule.
type nameRule struct {
	what  string
	valid func(string) bool
	rule  string
}

var (
	nodeName      = nameRule{"node name", names.IsDNS1123Subdomain, names.DNS1123SubdomainRule}
	masterName    = nameRule{"master name", names.IsDNS1123Subdomain, names.DNS1123SubdomainRule}
	podName       = nameRule{"pod name", names.IsDNS1123Subdomain, names.DNS1123SubdomainRule}
	claimName     = nameRule{"claim name", names.IsDNS1123Subdomain, names.DNS1123SubdomainRule}
	namespaceName = nameRule{"namespace", names.IsDNS1123Label, names.DNS1123LabelRule}
	containerName = nameRule{"container name", names.IsDNS1123Label, names.DNS1123LabelRule}
	objectName    = nameRule{"object name", names.IsDNS1123Subdomain, names.DNS1123SubdomainRule}
	tokenID       = nameRule{"token ID", auth.ValidID, "must be 6 lower-case letters or digits, the part of a token before the dot"}
	labelKey      = nameRule{"label key", names.IsLabelKey, "must be an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"}
	labelValue    = nameRule{"label value", names.IsLabelValue, "must be empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"}
)

func (n nameRule) check(v string) error {
	if !n.valid(v) {
		return errorf(http.StatusBadRequest, "invalid %s %q: %s", n.what, v, n.rule)
	}
	return nil
}

// pathRules say what each path wildcard of a route names. Every wildcard a
// route has must be here (route panics otherwise), so that a new route
// cannot forget its check; a nil rule is a value the handler checks itself.
var pathRules = map[string]*nameRule{
	"name":      &nodeName, // /v1/nodes/{name}, /v1/internal/heartbeat/{name}
	"pod":       &podName,
	"claim":     &claimName,
	"namespace": &namespaceName,
	"id":        &tokenID,
	"object":    &objectName, // a workload's, /v1/rollouts/{kind}/{namespace}/{object}
	"kind":      nil,         // rolloutID checks it
	"action":    nil,         // reboot or poweroff, a 404 otherwise
	// A name only looked up in a table (a node or master to remove): those
	// named before names were checked must stay removable.
	"existing": nil,
}

var wildcard = regexp.MustCompile(`\{([a-z]+)\}`)

// pathNamesOf lists the checked wildcards of a route's pattern.
func pathNamesOf(pattern string) []string {
	var out []string
	for _, m := range wildcard.FindAllStringSubmatch(pattern, -1) {
		rule, ok := pathRules[m[1]]
		if !ok {
			panic(fmt.Sprintf("api: route %s: no name rule for {%s}", pattern, m[1]))
		}
		if rule != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// checkPathNames checks r's path values named in keys.
func checkPathNames(r *http.Request, keys []string) error {
	for _, k := range keys {
		if err := pathRules[k].check(r.PathValue(k)); err != nil {
			return err
		}
	}
	return nil
}

// checkAddress checks a node's advertised address: host:port with an IP or
// a DNS name, as the masters dial it for logs (empty: none advertised).
func checkAddress(addr string) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if p, perr := strconv.Atoi(port); err == nil && (perr != nil || p < 1 || p > 65535) {
		err = fmt.Errorf("bad port")
	}
	if err == nil && net.ParseIP(host) == nil && !names.IsDNS1123Subdomain(strings.ToLower(host)) {
		err = fmt.Errorf("bad host")
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "invalid node address %q: want HOST:PORT with an IP address or a DNS name", addr)
	}
	return nil
}

// checkLabels checks a node's labels, which nodeSelectors match.
func checkLabels(labels map[string]string) error {
	for k, v := range labels {
		if err := labelKey.check(k); err != nil {
			return err
		}
		if err := labelValue.check(v); err != nil {
			return err
		}
	}
	return nil
}
