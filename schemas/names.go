package schemas

import "regexp"

// The Go forms of the name rules in cue/meta.cue (#DNSLabel,
// #DNSSubdomain, #LabelKey, #LabelValue), for names that reach berth by
// another way than a spec: the API's paths and bodies. names_test.go holds
// them to the CUE definitions.
var (
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelKey     = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// Messages for the rules, in Kubernetes' words, to follow a quoted name.
const (
	DNS1123LabelRule     = "must be a DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
	DNS1123SubdomainRule = "must be a DNS-1123 subdomain: at most 253 lower-case letters, digits, '-' and '.', each part starting and ending with a letter or digit"
)

// IsDNS1123Label reports whether s is a DNS-1123 label, as Kubernetes
// wants namespace and container names.
func IsDNS1123Label(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// IsDNS1123Subdomain reports whether s is a DNS-1123 subdomain, as
// Kubernetes wants node names and most object names.
func IsDNS1123Subdomain(s string) bool { return len(s) <= 253 && dnsSubdomain.MatchString(s) }

// IsLabelKey reports whether s is a label key: an optional DNS-subdomain
// prefix and "/", then a name of at most 63 characters.
func IsLabelKey(s string) bool { return labelKey.MatchString(s) }

// IsLabelValue reports whether s is a label value: empty, or at most 63
// characters of the label name alphabet.
func IsLabelValue(s string) bool { return labelValue.MatchString(s) }
