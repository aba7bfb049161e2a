package schemas

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
	"go.yaml.in/yaml/v3"
)

// facts is what the cross-object checks need to know of one object, with
// positions taken while its YAML tree is still at hand.
type facts struct {
	id      objects.ObjectID
	namePos diag.Position
	failed  bool // the object failed its schema: known by name only

	refs       []ref           // ConfigMaps and Secrets the object's pods need
	keys       map[string]bool // a ConfigMap's or Secret's keys
	secretType string

	podLabels map[string]string // a Deployment's pod template labels
	podPorts  map[string]bool   // named container ports of a Deployment's pods
	generated map[string]bool   // a StatefulSet's claim templates, its pods' volumes

	selector    map[string]string // a Service's selector
	selectorPos diag.Position
	targetPorts []namedPort // a Service's named targetPorts
	claims      []claim     // what a Service holds alone in the cluster
	headless    bool        // a Service without a ClusterIP

	serviceName    string // a StatefulSet's governing Service
	serviceNamePos diag.Position
}

// claim is something one Service only may hold: a pinned ClusterIP, a
// pinned nodePort, a LoadBalancer's port on the nodes' addresses.
type claim struct {
	what string // "clusterIP 10.96.0.10", the key two claims collide on
	verb string // "pinned": how the Service holds it
	why  string // why only one may
	pos  diag.Position
}

type ref struct {
	kind, name, key string
	optional        bool
	pullSecret      bool // an imagePullSecrets entry: absent is a warning, as Kubernetes pulls without it
	pos             diag.Position
}

type namedPort struct {
	name string
	pos  diag.Position
}

// at returns the position of the node at path (string keys, int indexes).
// Where the path ends early, what is missing is missing from the deepest
// mapping on the way: the position is that mapping's key (spec: for a
// missing spec.selector), or the mapping itself when it has none.
func (c *checker) at(n *yaml.Node, path ...any) diag.Position {
	var key *yaml.Node // the key n was reached by, if a mapping's
	for _, p := range path {
		var next, nextKey *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				nextKey, next = mapEntry(n, p)
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			if key != nil {
				return c.pos(key)
			}
			break
		}
		n, key = next, nextKey
	}
	return c.pos(n)
}

// report collects the diagnostics of one object's own checks.
type report struct {
	c     *checker
	root  *yaml.Node
	diags []diag.Diagnostic
}

func (r *report) add(sev diag.Severity, rule string, path []any, format string, args ...any) {
	r.diags = append(r.diags, diag.Diagnostic{Severity: sev, Position: r.c.at(r.root, path...), Rule: rule,
		Message: pathText(path) + ": " + fmt.Sprintf(format, args...), Object: r.c.object})
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][-A-Za-z0-9_]*$`)

func pathText(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if !plainKey.MatchString(p) {
				fmt.Fprintf(&b, "[%q]", p) // a key such as ".dockerconfigjson" or "index.html"
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

func join(path []any, more ...any) []any {
	return append(slices.Clip(path), more...)
}

// objectChecks runs the checks that need one object only, beyond what its
// schema says, and fills doc.facts for crossCheck.
func objectChecks(c *checker, doc *document, root *yaml.Node) []diag.Diagnostic {
	r := &report{c: c, root: root}
	f := &doc.facts
	switch o := doc.obj.(type) {
	case *objects.ConfigMap:
		f.keys = map[string]bool{}
		for k := range o.Data {
			f.keys[k] = true
		}
		for k := range o.BinaryData {
			if f.keys[k] {
				r.add(diag.Error, diag.RuleUnique, []any{"binaryData", k}, "key %s is also in data", Excerpt(k))
			}
			f.keys[k] = true
		}
	case *objects.Secret:
		f.keys, f.secretType = map[string]bool{}, o.Type
		for _, k := range sortedKeys(o.Data) {
			if _, err := base64.StdEncoding.DecodeString(o.Data[k]); err != nil {
				r.add(diag.Error, diag.RuleSchema, []any{"data", k}, "value is not valid base64: %v", err)
			}
			f.keys[k] = true
		}
		for k := range o.StringData {
			f.keys[k] = true
		}
		dockerConfigChecks(r, o)
	case *objects.Deployment:
		deploymentChecks(r, f, o)
	case *objects.DaemonSet:
		rolloutChecks(r, f, "DaemonSet", "updateStrategy", o.Spec.Selector, &o.Spec.Template, o.Spec.UpdateStrategy.RollingUpdate)
		for i, v := range o.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				r.add(diag.Error, diag.RuleSchema, []any{"spec", "template", "spec", "volumes", i, "persistentVolumeClaim"},
					"berth does not support a claim in a DaemonSet: its pods run on every node, a local-path volume lives on one")
			}
		}
	case *objects.StatefulSet:
		statefulSetChecks(r, f, o)
	case *objects.PersistentVolumeClaim:
		claimChecks(r, []any{"spec"}, &o.Spec)
	case *objects.Job:
		jobChecks(r, f, []any{"spec"}, &o.Spec)
	case *objects.CronJob:
		cronJobChecks(r, f, o)
	case *objects.Service:
		serviceChecks(r, f, o)
	}
	return r.diags
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func deploymentChecks(r *report, f *facts, d *objects.Deployment) {
	rolloutChecks(r, f, "Deployment", "strategy", d.Spec.Selector, &d.Spec.Template, d.Spec.Strategy.RollingUpdate)
}

// rolloutChecks covers what a Deployment and a DaemonSet share: a
// selector that matches the template, a rolling update that can
// progress, pods that restart Always.
func rolloutChecks(r *report, f *facts, kind, strategy string, sel objects.LabelSelector, t *objects.PodTemplateSpec, ru *objects.RollingUpdateDeployment) {
	var labels map[string]string
	if t.Metadata != nil {
		labels = t.Metadata.Labels
	}
	f.podLabels = labels
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		r.add(diag.Error, diag.RuleSelector, []any{"spec", "selector"}, "must not be empty: a %s selects its pods by label", kind)
	} else if !sel.Matches(labels) {
		r.add(diag.Error, diag.RuleSelector, []any{"spec", "selector"}, "does not match the pod template's labels (spec.template.metadata.labels %s)", showLabels(labels))
	}
	if ru != nil && isZero(ru.MaxSurge) && isZero(ru.MaxUnavailable) {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", strategy, "rollingUpdate"}, "maxSurge and maxUnavailable cannot both be 0: the rollout could never make progress")
	}
	if rp := t.Spec.RestartPolicy; rp != "Always" {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "template", "spec", "restartPolicy"}, "must be Always for a %s, whose pods run until replaced (a Job runs pods to completion)", kind)
	}
	podChecks(r, f, []any{"spec", "template", "spec"}, &t.Spec)
}

// statefulSetChecks: a name that makes valid hostnames, the names the
// StatefulSet sets itself left to it, claim templates the pods may mount.
func statefulSetChecks(r *report, f *facts, o *objects.StatefulSet) {
	// <name>-<ordinal> is each pod's hostname, and controller-revision-hash
	// <name>-<hash> a label value, as Kubernetes limits it.
	if name := o.Metadata.Name; len(name) > 52 || strings.Contains(name, ".") {
		r.add(diag.Error, diag.RuleSchema, []any{"metadata", "name"}, "a StatefulSet's name must be a DNS label of at most 52 characters: its pods' names, <name>-<ordinal>, are their hostnames")
	}
	spec := &o.Spec.Template.Spec
	if spec.Hostname != "" {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "template", "spec", "hostname"}, "the StatefulSet sets it: each pod's hostname is its name")
	}
	if spec.Subdomain != "" {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "template", "spec", "subdomain"}, "the StatefulSet sets it: the pods' subdomain is spec.serviceName")
	}
	templates := map[string]bool{}
	for i, t := range o.Spec.VolumeClaimTemplates {
		claimChecks(r, []any{"spec", "volumeClaimTemplates", i, "spec"}, &t.Spec)
		if templates[t.Metadata.Name] {
			r.add(diag.Error, diag.RuleUnique, []any{"spec", "volumeClaimTemplates", i, "metadata", "name"}, "claim template name %s is used twice", Excerpt(t.Metadata.Name))
		}
		templates[t.Metadata.Name] = true
	}
	for i, v := range spec.Volumes {
		if templates[v.Name] {
			r.add(diag.Error, diag.RuleUnique, []any{"spec", "template", "spec", "volumes", i, "name"}, "%s is also a volumeClaimTemplate, which gives each pod that volume", Excerpt(v.Name))
		}
	}
	// The templates are volumes of every pod: mounts may name them.
	t := o.Spec.Template
	for _, name := range slices.Sorted(maps.Keys(templates)) {
		t.Spec.Volumes = append(slices.Clip(t.Spec.Volumes), objects.Volume{Name: name, PersistentVolumeClaim: &objects.ClaimVolumeSource{ClaimName: name}})
	}
	f.generated = templates
	rolloutChecks(r, f, "StatefulSet", "updateStrategy", o.Spec.Selector, &t, nil)
	if o.Spec.ServiceName != "" {
		f.serviceName, f.serviceNamePos = o.Spec.ServiceName, r.c.at(r.root, "spec", "serviceName")
	}
}

// claimChecks refuses the access modes a node's directory cannot give.
func claimChecks(r *report, at []any, c *objects.ClaimSpec) {
	for i, m := range c.AccessModes {
		if m == "ReadWriteMany" || m == "ReadOnlyMany" {
			r.add(diag.Error, diag.RuleSchema, join(at, "accessModes", i), "berth does not support %s: a local-path volume lives on one node, so its pods run there (use ReadWriteOnce or ReadWriteOncePod)", m)
		}
	}
}

func isZero(v objects.IntOrString) bool {
	if v.IsString {
		return strings.TrimLeft(strings.TrimSuffix(v.Str, "%"), "0") == ""
	}
	return v.Int == 0
}

func showLabels(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, shown(k)+"="+shown(m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// podChecks covers a pod spec: unique names, one source per env var, volume
// and probe, mounts of declared volumes, and the references to collect.
func podChecks(r *report, f *facts, at []any, p *objects.PodSpec) {
	f.podPorts = map[string]bool{}
	sa, saField := p.ServiceAccountName, "serviceAccountName"
	if sa == "" {
		sa, saField = p.DeprecatedServiceAccount, "serviceAccount"
	}
	if p.ServiceAccountName != "" && p.DeprecatedServiceAccount != "" && p.ServiceAccountName != p.DeprecatedServiceAccount {
		r.add(diag.Error, diag.RuleSchema, join(at, "serviceAccount"), "names %s, but serviceAccountName names %s", Excerpt(p.DeprecatedServiceAccount), Excerpt(p.ServiceAccountName))
	}
	if sa != "" && sa != "default" { // every namespace has "default"
		f.refs = append(f.refs, ref{kind: "ServiceAccount", name: sa, pos: r.c.at(r.root, join(at, saField)...)})
	}
	volumes := map[string]bool{}
	for i, v := range p.Volumes {
		vp := join(at, "volumes", i)
		if volumes[v.Name] {
			r.add(diag.Error, diag.RuleUnique, join(vp, "name"), "volume name %s is used twice", Excerpt(v.Name))
		}
		volumes[v.Name] = true
		sources := 0
		if v.ConfigMap != nil {
			sources++
			f.refs = append(f.refs, ref{kind: "ConfigMap", name: v.ConfigMap.Name, optional: v.ConfigMap.Optional, pos: r.c.at(r.root, join(vp, "configMap", "name")...)})
			itemRefs(r, f, join(vp, "configMap"), "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Optional, v.ConfigMap.Items)
		}
		if v.Secret != nil {
			sources++
			f.refs = append(f.refs, ref{kind: "Secret", name: v.Secret.SecretName, optional: v.Secret.Optional, pos: r.c.at(r.root, join(vp, "secret", "secretName")...)})
			itemRefs(r, f, join(vp, "secret"), "Secret", v.Secret.SecretName, v.Secret.Optional, v.Secret.Items)
		}
		if v.EmptyDir != nil {
			sources++
		}
		if c := v.PersistentVolumeClaim; c != nil {
			sources++
			if !f.generated[c.ClaimName] {
				f.refs = append(f.refs, ref{kind: "PersistentVolumeClaim", name: c.ClaimName, pos: r.c.at(r.root, join(vp, "persistentVolumeClaim", "claimName")...)})
			}
		}
		if v.HostPath != nil {
			sources++
			hostPathChecks(r, join(vp, "hostPath"), p, v)
		}
		if sources != 1 {
			r.add(diag.Error, diag.RuleSchema, vp, "a volume needs exactly one of configMap, secret, emptyDir, persistentVolumeClaim, hostPath (has %d)", sources)
		}
	}
	if p.DNSPolicy == "None" && (p.DNSConfig == nil || len(p.DNSConfig.Nameservers) == 0) {
		r.add(diag.Error, diag.RuleSchema, join(at, "dnsPolicy"), "None needs at least one nameserver in dnsConfig, as Kubernetes validates it")
	}
	if c := p.DNSConfig; c != nil && len(c.Nameservers) > 3 {
		r.add(diag.Error, diag.RuleSchema, join(at, "dnsConfig", "nameservers"), "at most 3 nameservers, as Kubernetes validates it (has %d)", len(c.Nameservers))
	}
	for i, s := range p.ImagePullSecrets {
		f.refs = append(f.refs, ref{kind: "Secret", name: s.Name, pullSecret: true, pos: r.c.at(r.root, join(at, "imagePullSecrets", i, "name")...)})
	}
	names := map[string]bool{} // for references to any container of the pod
	for _, ct := range p.AllContainers() {
		names[ct.Name] = true
	}
	containers := map[string]bool{}
	portOwner := map[string]string{}
	for i, ct := range p.AllContainers() {
		cp, isInit := join(at, "containers", i-len(p.InitContainers)), i < len(p.InitContainers)
		if isInit {
			cp = join(at, "initContainers", i)
		}
		if containers[ct.Name] {
			r.add(diag.Error, diag.RuleUnique, join(cp, "name"), "container name %s is used twice", Excerpt(ct.Name))
		}
		containers[ct.Name] = true
		if isInit {
			for _, pr := range []struct {
				field string
				p     *objects.Probe
			}{{"livenessProbe", ct.LivenessProbe}, {"readinessProbe", ct.ReadinessProbe}, {"startupProbe", ct.StartupProbe}} {
				if pr.p != nil {
					r.add(diag.Error, diag.RuleSchema, join(cp, pr.field), "an init container runs to completion and cannot have a %s, as in Kubernetes", pr.field)
				}
			}
		}
		own := map[string]bool{}
		for j, port := range ct.Ports {
			if isInit {
				break // a Service's targetPort names the containers' ports
			}
			if port.Name == "" {
				continue
			}
			if other, dup := portOwner[port.Name]; dup {
				r.add(diag.Error, diag.RuleUnique, join(cp, "ports", j, "name"), "port name %s is already used by container %s; port names must be unique in a pod", Excerpt(port.Name), Excerpt(other))
			}
			portOwner[port.Name] = ct.Name
			own[port.Name] = true
			f.podPorts[port.Name] = true
		}
		for j, e := range ct.Env {
			envChecks(r, f, names, join(cp, "env", j), e)
		}
		for j, e := range ct.EnvFrom {
			at := join(cp, "envFrom", j)
			if (e.ConfigMapRef == nil) == (e.SecretRef == nil) {
				r.add(diag.Error, diag.RuleSchema, at, "needs exactly one of configMapRef, secretRef")
				continue
			}
			kind, o, field := "ConfigMap", e.ConfigMapRef, "configMapRef"
			if o == nil {
				kind, o, field = "Secret", e.SecretRef, "secretRef"
			}
			f.refs = append(f.refs, ref{kind: kind, name: o.Name, optional: o.Optional, pos: r.c.at(r.root, join(at, field, "name")...)})
		}
		mounts := map[string]bool{}
		for j, m := range ct.VolumeMounts {
			mp := join(cp, "volumeMounts", j)
			if !volumes[m.Name] {
				r.add(diag.Error, diag.RuleReference, join(mp, "name"), "no volume named %s in spec.volumes", Excerpt(m.Name))
			}
			if mounts[m.MountPath] {
				r.add(diag.Error, diag.RuleUnique, join(mp, "mountPath"), "%s is mounted twice", shown(m.MountPath))
			}
			mounts[m.MountPath] = true
		}
		if lc := ct.Lifecycle; lc != nil {
			if isInit && (lc.PostStart != nil || lc.PreStop != nil) {
				r.add(diag.Error, diag.RuleSchema, join(cp, "lifecycle"), "an init container cannot have lifecycle hooks, as in Kubernetes")
			}
			for _, hook := range []struct {
				name string
				h    *objects.Handler
			}{{"postStart", lc.PostStart}, {"preStop", lc.PreStop}} {
				if hook.h != nil {
					handlerChecks(r, join(cp, "lifecycle", hook.name), "a hook", "exec, httpGet, tcpSocket, sleep", hook.h, own)
				}
			}
		}
		probeChecks(r, join(cp, "livenessProbe"), ct.LivenessProbe, own)
		probeChecks(r, join(cp, "readinessProbe"), ct.ReadinessProbe, own)
		probeChecks(r, join(cp, "startupProbe"), ct.StartupProbe, own)
		if sc := ct.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			r.add(diag.Error, diag.RuleSchema, join(cp, "securityContext", "allowPrivilegeEscalation"), "cannot be false for a privileged container, as in Kubernetes")
		}
		for _, pr := range []struct {
			name string
			p    *objects.Probe
		}{{"livenessProbe", ct.LivenessProbe}, {"startupProbe", ct.StartupProbe}} {
			if pr.p != nil && pr.p.SuccessThreshold != 1 {
				r.add(diag.Error, diag.RuleSchema, join(cp, pr.name, "successThreshold"), "must be 1 for a %s, as in Kubernetes", pr.name)
			}
		}
	}
}

// hostPathChecks lets a hostPath volume reach only what berth.yaml's
// allowedHostPaths allow, mounted read-only where the rule says so: a
// path of the node is the node's, and the repository says which ones it
// may have, where a review sees it.
func hostPathChecks(r *report, at []any, p *objects.PodSpec, v objects.Volume) {
	path := v.HostPath.Path
	if filepath.Clean(path) != path {
		r.add(diag.Error, diag.RuleSchema, join(at, "path"), "%s is not a clean path (write %s)", Excerpt(path), Excerpt(filepath.Clean(path)))
		return
	}
	rule, ok := r.c.cfg.hostPathRule(path)
	if !ok {
		r.add(diag.Error, diag.RuleSchema, join(at, "path"),
			"hostPath %s reaches the node's files, which the repository must allow: add a pathPrefix that holds it to allowedHostPaths in berth.yaml", Excerpt(path))
		return
	}
	if !rule.ReadOnly {
		return
	}
	for _, ct := range p.AllContainers() {
		for _, m := range ct.VolumeMounts {
			if m.Name == v.Name && !m.ReadOnly {
				r.add(diag.Error, diag.RuleSchema, join(at, "path"),
					"berth.yaml allows %s read-only: container %s must mount volume %s with readOnly: true", rule.PathPrefix, Excerpt(ct.Name), Excerpt(v.Name))
			}
		}
	}
}

func itemRefs(r *report, f *facts, at []any, kind, name string, optional bool, items []objects.KeyToPath) {
	for i, it := range items {
		f.refs = append(f.refs, ref{kind: kind, name: name, key: it.Key, optional: optional, pos: r.c.at(r.root, join(at, "items", i, "key")...)})
	}
}

func envChecks(r *report, f *facts, containers map[string]bool, at []any, e objects.EnvVar) {
	if e.ValueFrom == nil {
		return
	}
	if e.Value != "" {
		r.add(diag.Error, diag.RuleSchema, at, "value and valueFrom cannot both be set")
	}
	vf := e.ValueFrom
	set := 0
	for _, isSet := range []bool{vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil, vf.FieldRef != nil, vf.ResourceFieldRef != nil} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		r.add(diag.Error, diag.RuleSchema, join(at, "valueFrom"), "needs exactly one of configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef")
		return
	}
	if rf := vf.ResourceFieldRef; rf != nil {
		if rf.Divisor != "" {
			if d, err := rf.Divisor.Milli(); err != nil || d == 0 {
				r.add(diag.Error, diag.RuleSchema, join(at, "valueFrom", "resourceFieldRef", "divisor"), "must be a quantity above zero")
			}
		}
		if rf.ContainerName != "" && !containers[rf.ContainerName] {
			r.add(diag.Error, diag.RuleReference, join(at, "valueFrom", "resourceFieldRef", "containerName"), "the pod has no container %q", rf.ContainerName)
		}
		return
	}
	if vf.FieldRef != nil {
		return
	}
	kind, sel, field := "ConfigMap", vf.ConfigMapKeyRef, "configMapKeyRef"
	if sel == nil {
		kind, sel, field = "Secret", vf.SecretKeyRef, "secretKeyRef"
	}
	f.refs = append(f.refs, ref{kind: kind, name: sel.Name, key: sel.Key, optional: sel.Optional, pos: r.c.at(r.root, join(at, "valueFrom", field, "name")...)})
}

func probeChecks(r *report, at []any, p *objects.Probe, ports map[string]bool) {
	if p != nil {
		handlerChecks(r, at, "a probe", "httpGet, tcpSocket, exec, grpc", &p.Handler, ports)
	}
}

// handlerChecks: exactly one action (the schema admits only those that
// what, a probe or a hook, may have), and a named port the container has.
func handlerChecks(r *report, at []any, what, allowed string, h *objects.Handler, ports map[string]bool) {
	handlers := 0
	var port *objects.IntOrString
	var portPath []any
	if h.HTTPGet != nil {
		handlers++
		port, portPath = &h.HTTPGet.Port, join(at, "httpGet", "port")
	}
	if h.TCPSocket != nil {
		handlers++
		port, portPath = &h.TCPSocket.Port, join(at, "tcpSocket", "port")
	}
	for _, set := range []bool{h.Exec != nil, h.GRPC != nil, h.Sleep != nil} {
		if set {
			handlers++
		}
	}
	if handlers != 1 {
		r.add(diag.Error, diag.RuleSchema, at, "%s needs exactly one of %s (has %d)", what, allowed, handlers)
		return
	}
	if port != nil && port.IsString && !ports[port.Str] {
		r.add(diag.Error, diag.RuleReference, portPath, "this container has no port named %s", Excerpt(port.Str))
	}
}

func serviceChecks(r *report, f *facts, s *objects.Service) {
	spec := &s.Spec
	if spec.Type == "ExternalName" {
		for _, field := range []struct {
			name string
			set  bool
		}{{"selector", len(spec.Selector) > 0}, {"clusterIP", spec.ClusterIP != "" && spec.ClusterIP != "None"}} {
			if field.set {
				r.add(diag.Error, diag.RuleSchema, []any{"spec", field.name}, "an ExternalName Service is a DNS alias: it has no %s", field.name)
			}
		}
		return
	}
	if len(spec.Ports) == 0 {
		r.add(diag.Error, diag.RuleSchema, []any{"spec"}, "a Service needs at least one port (an ExternalName Service none)")
	}
	f.selector, f.headless = spec.Selector, spec.Headless()
	f.selectorPos = r.c.at(r.root, "spec", "selector")
	if len(spec.Selector) == 0 {
		r.add(diag.Warning, diag.RuleSelector, []any{"spec"}, "no selector: berth has no manual Endpoints, so this Service will route nowhere")
	}
	claim := func(what, verb, why string, path ...any) {
		f.claims = append(f.claims, claim{what: what, verb: verb, why: why, pos: r.c.at(r.root, path...)})
	}
	if ip := spec.ClusterIP; ip != "" && !spec.Headless() {
		// The schema's pattern lets 300.1.1.1 through; the masters would
		// then fail to assign it on every pass.
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "clusterIP"}, "clusterIP %s is not an IPv4 address", Excerpt(ip))
		} else {
			claim("clusterIP "+a.String(), "pinned", "a ClusterIP belongs to one Service", "spec", "clusterIP")
		}
	}
	if spec.ClusterIPs != nil && (len(spec.ClusterIPs) != 1 || spec.ClusterIPs[0] != spec.ClusterIP) {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "clusterIPs"}, "must be [clusterIP] (here [%s]): berth gives a Service one address", Excerpt(spec.ClusterIP))
	}
	if len(spec.IPFamilies) > 1 {
		r.add(diag.Error, diag.RuleSchema, []any{"spec", "ipFamilies"}, "berth gives a Service one IPv4 address: list IPv4 once")
	}
	if spec.Headless() {
		// Nothing is proxied for a headless Service, so these would be
		// accepted and do nothing.
		if spec.Type != "ClusterIP" {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "clusterIP"}, "a %s Service needs a ClusterIP: only a ClusterIP Service may be headless", spec.Type)
		}
		if spec.SessionAffinity == "ClientIP" {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "sessionAffinity"}, "a headless Service is not proxied, so it has no session affinity")
		}
		if spec.InternalTrafficPolicy == "Local" {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "internalTrafficPolicy"}, "a headless Service is not proxied, so it has no traffic policy")
		}
	}
	for i, cidr := range spec.LoadBalancerSourceRanges {
		if p, err := netip.ParsePrefix(cidr); err != nil || !p.Addr().Is4() {
			r.add(diag.Error, diag.RuleSchema, []any{"spec", "loadBalancerSourceRanges", i}, "%s is not an IPv4 address range", Excerpt(cidr))
		}
	}
	names := map[string]bool{}
	ports := map[string]bool{}
	nodePorts := map[string]bool{}
	for i, p := range spec.Ports {
		pp := []any{"spec", "ports", i}
		if len(spec.Ports) > 1 && p.Name == "" {
			r.add(diag.Error, diag.RuleSchema, pp, "a Service with several ports must name each of them")
		}
		if p.Name != "" && names[p.Name] {
			r.add(diag.Error, diag.RuleUnique, join(pp, "name"), "port name %s is used twice", Excerpt(p.Name))
		}
		names[p.Name] = true
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if ports[key] {
			r.add(diag.Error, diag.RuleUnique, join(pp, "port"), "port %s is declared twice", key)
		}
		ports[key] = true
		if spec.Type == "LoadBalancer" {
			claim("port "+key+" on the nodes' addresses", "taken", "ServiceLB serves a port of the nodes for one LoadBalancer Service", join(pp, "port")...)
		}
		if p.NodePort != 0 {
			if spec.Type != "NodePort" && spec.Type != "LoadBalancer" {
				r.add(diag.Error, diag.RuleSchema, join(pp, "nodePort"), "nodePort is only allowed when spec.type is NodePort or LoadBalancer")
			}
			// One number may serve a TCP and a UDP port of one Service,
			// as in Kubernetes.
			npKey := fmt.Sprintf("%d/%s", p.NodePort, p.Protocol)
			if nodePorts[npKey] {
				r.add(diag.Error, diag.RuleUnique, join(pp, "nodePort"), "nodePort %s is used twice", npKey)
			} else if !nodePorts[fmt.Sprint(p.NodePort)] {
				claim(fmt.Sprintf("nodePort %d", p.NodePort), "pinned", "a node port belongs to one Service", join(pp, "nodePort")...)
			}
			nodePorts[npKey], nodePorts[fmt.Sprint(p.NodePort)] = true, true
		}
		if p.TargetPort != nil && p.TargetPort.IsString {
			f.targetPorts = append(f.targetPorts, namedPort{name: p.TargetPort.Str, pos: r.c.at(r.root, join(pp, "targetPort")...)})
		}
	}
}

// crossCheck finds what only the whole repository shows: duplicates,
// references to ConfigMaps and Secrets it does not define, and Services
// whose named target ports no selected pod declares.
func crossCheck(docs []*document) []diag.Diagnostic {
	var diags []diag.Diagnostic
	byID := map[objects.ObjectID]*document{}
	namespaces := map[string]bool{"default": true}
	type held struct {
		by  *facts
		pos diag.Position
	}
	claimed := map[string]held{} // the first claim of each
	// Deployments by namespace, in document order, so each Service looks at
	// its own namespace's Deployments only: scanning every document for every
	// Service made this pass quadratic in the size of the repository.
	deployments := map[string]*nsDeployments{}
	for _, d := range docs {
		if k := d.facts.id.Kind; k == "Deployment" || k == "DaemonSet" || k == "StatefulSet" {
			nd := deployments[d.facts.id.Namespace]
			if nd == nil {
				nd = &nsDeployments{}
				deployments[d.facts.id.Namespace] = nd
			}
			if d.facts.failed {
				nd.anyFailed = true
			} else {
				nd.ok = append(nd.ok, &d.facts)
			}
		}
		if d.facts.id.Name == "" {
			continue
		}
		if first, dup := byID[d.facts.id]; dup {
			diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: d.facts.namePos, Rule: diag.RuleDuplicate, Object: display(d.facts.id),
				Message: fmt.Sprintf("%s is defined twice; first at %s", display(d.facts.id), first.facts.namePos),
				Related: []diag.Related{{Position: first.facts.namePos, Message: "first definition"}}})
			continue
		}
		byID[d.facts.id] = d
		if d.facts.id.Kind == "Namespace" {
			namespaces[d.facts.id.Name] = true
		}
	}
	for _, d := range docs {
		f := &d.facts
		if f.failed {
			continue
		}
		if ns := f.id.Namespace; ns != "" && !namespaces[ns] {
			diags = append(diags, diag.Diagnostic{Severity: diag.Warning, Position: f.namePos, Rule: diag.RuleReference, Object: display(f.id),
				Message: fmt.Sprintf("namespace %s is not defined in the repository; add a Namespace object for it", Excerpt(ns))})
		}
		for _, rf := range f.refs {
			target := byID[objects.ObjectID{Kind: rf.kind, Namespace: f.id.Namespace, Name: rf.name}]
			switch {
			case rf.optional:
			case target == nil && rf.kind == "PersistentVolumeClaim":
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("PersistentVolumeClaim %s is not defined in namespace %s", Excerpt(rf.name), Excerpt(f.id.Namespace))})
			case rf.pullSecret && target == nil:
				diags = append(diags, diag.Diagnostic{Severity: diag.Warning, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("Secret %s is not defined in namespace %s; images are pulled without it, as Kubernetes does", Excerpt(rf.name), Excerpt(f.id.Namespace))})
			case rf.pullSecret && !target.facts.failed && objects.DockerConfigKey(target.facts.secretType) == "":
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("Secret %s is of type %s; an image pull secret is of type %s or %s", Excerpt(rf.name), Excerpt(target.facts.secretType), objects.SecretTypeDockerConfigJSON, objects.SecretTypeDockerCfg),
					Related: []diag.Related{{Position: target.facts.namePos, Message: "Secret defined here"}}})
			case rf.pullSecret:
			case target == nil && (rf.kind == "ConfigMap" || rf.kind == "Secret"):
				// Valid Kubernetes: the pod waits (CreateContainerConfigError)
				// until the object exists, which a repository whose Secrets
				// come from elsewhere (sealed or external secrets) relies on.
				diags = append(diags, diag.Diagnostic{Severity: diag.Warning, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("%s %s is not defined in namespace %s: the pods wait until it is, as in Kubernetes (mark the reference optional: true if it may be absent)", rf.kind, Excerpt(rf.name), Excerpt(f.id.Namespace))})
			case target == nil:
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("%s %s is not defined in namespace %s (mark the reference optional: true if it may be absent)", rf.kind, Excerpt(rf.name), Excerpt(f.id.Namespace))})
			case rf.key != "" && !target.facts.failed && !target.facts.keys[rf.key]:
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: rf.pos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("%s %s has no key %s", rf.kind, Excerpt(rf.name), Excerpt(rf.key)),
					Related: []diag.Related{{Position: target.facts.namePos, Message: rf.kind + " defined here"}}})
			}
		}
		if f.serviceName != "" {
			if svc := byID[objects.ObjectID{Kind: "Service", Namespace: f.id.Namespace, Name: f.serviceName}]; svc == nil || !svc.facts.failed && !svc.facts.headless {
				diags = append(diags, diag.Diagnostic{Severity: diag.Warning, Position: f.serviceNamePos, Rule: diag.RuleReference, Object: display(f.id),
					Message: fmt.Sprintf("no headless Service %s (clusterIP: None) in namespace %s: the pods' names <pod>.%s are not in the cluster DNS without it", Excerpt(f.serviceName), Excerpt(f.id.Namespace), f.serviceName)})
			}
		}
		if f.id.Kind == "Service" && len(f.selector) > 0 {
			diags = append(diags, serviceTargets(f, deployments[f.id.Namespace])...)
		}
		for _, c := range f.claims {
			if first, ok := claimed[c.what]; ok {
				diags = append(diags, diag.Diagnostic{Severity: diag.Error, Position: c.pos, Rule: diag.RuleDuplicate, Object: display(f.id),
					Message: fmt.Sprintf("%s is %s by %s too; %s", c.what, c.verb, display(first.by.id), c.why),
					Related: []diag.Related{{Position: first.pos, Message: c.verb + " first here"}}})
			} else {
				claimed[c.what] = held{f, c.pos}
			}
		}
	}
	return diags
}

// nsDeployments is what serviceTargets needs of one namespace's Deployments.
type nsDeployments struct {
	ok        []*facts // those that passed their schema, in document order
	anyFailed bool     // one failed: its labels are unknown
}

func serviceTargets(svc *facts, deps *nsDeployments) []diag.Diagnostic {
	var selected []*facts
	if deps != nil {
		if deps.anyFailed {
			return nil // a failed Deployment's labels are unknown: it may be the one selected
		}
		for _, d := range deps.ok {
			if (objects.LabelSelector{MatchLabels: svc.selector}).Matches(d.podLabels) {
				selected = append(selected, d)
			}
		}
	}
	if len(selected) == 0 {
		return []diag.Diagnostic{{Severity: diag.Warning, Position: svc.selectorPos, Rule: diag.RuleSelector, Object: display(svc.id),
			Message: fmt.Sprintf("spec.selector %s matches no Deployment's pods in namespace %s", showLabels(svc.selector), Excerpt(svc.id.Namespace))}}
	}
	var diags []diag.Diagnostic
	for _, tp := range svc.targetPorts {
		found := false
		for _, d := range selected {
			found = found || d.podPorts[tp.name]
		}
		if !found {
			diags = append(diags, diag.Diagnostic{Severity: diag.Warning, Position: tp.pos, Rule: diag.RuleTargetPort, Object: display(svc.id),
				Message: fmt.Sprintf("targetPort %s is not a named port of any container this Service selects", Excerpt(tp.name))})
		}
	}
	return diags
}

// dockerConfigChecks: a Secret of a registry-credentials type holds its
// key, and the key holds the JSON the kubelet reads, as the API server
// validates it.
func dockerConfigChecks(r *report, s *objects.Secret) {
	if _, err := objects.RegistryAuths(s); err != nil {
		key := objects.DockerConfigKey(s.Type)
		at := []any{"data", key}
		if _, ok := s.StringData[key]; ok {
			at = []any{"stringData", key}
		} else if _, ok := s.Data[key]; !ok {
			at = []any{"type"}
		}
		r.add(diag.Error, diag.RuleSchema, at, "%v", err)
	}
}
