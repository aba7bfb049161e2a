// Package bench generates realistic config repositories and measures how
// fast berth validates them, next to `cue vet` on the same files against the
// same schemas (see validate_test.go and docs/benchmarks.md).
package bench

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FilesPerNamespace is how many files (one app each) share a namespace; the
// first file of each namespace also defines the Namespace, so every
// namespace that objects use is defined and berth reports no warning.
const FilesPerNamespace = 50

// MinObjectsPerFile is the smallest objectsPerFile GenerateRepo accepts:
// an app is a Deployment, a Service, a ConfigMap and a Secret that refer to
// one another, and the first file of a namespace needs a fifth slot for the
// Namespace.
const MinObjectsPerFile = 5

// GenerateRepo writes a config repository of files*objectsPerFile objects
// under dir, deterministically: the same arguments give the same bytes.
//
// Each file holds one app: a Deployment (one or two containers, env from a
// ConfigMap and a Secret, named ports, resources, probes, volumes), a Service
// that selects it by label and targets its named ports, the ConfigMap and the
// Secret it reads, and objectsPerFile-4 more objects: the Namespace in the
// first file of each namespace, otherwise ConfigMaps mounted as volumes.
// Files are grouped in one directory per namespace, FilesPerNamespace each
// (2,000 files make 40 namespaces).
//
// With cueVariant false every file is a multi-document YAML file. With
// cueVariant true the same objects are written as CUE: each namespace
// directory is one package with a templates.cue that stamps objects out of
// per-app parameters (one .cue file per app) and a namespace.cue, so the
// loader's CUE path evaluates templates, comprehensions and conditionals.
func GenerateRepo(dir string, files, objectsPerFile int, cueVariant bool) error {
	if files < 1 {
		return fmt.Errorf("files must be at least 1, not %d", files)
	}
	if objectsPerFile < MinObjectsPerFile {
		return fmt.Errorf("objectsPerFile must be at least %d, not %d", MinObjectsPerFile, objectsPerFile)
	}
	for nsIdx := 0; nsIdx*FilesPerNamespace < files; nsIdx++ {
		ns := namespaceName(nsIdx)
		nsDir := filepath.Join(dir, ns)
		if err := os.MkdirAll(nsDir, 0o755); err != nil {
			return err
		}
		if cueVariant {
			if err := writeFile(filepath.Join(nsDir, "templates.cue"), cueTemplates(ns)); err != nil {
				return err
			}
			if err := writeFile(filepath.Join(nsDir, "namespace.cue"), cueNamespace(ns, nsIdx)); err != nil {
				return err
			}
		}
		for i := nsIdx * FilesPerNamespace; i < min(files, (nsIdx+1)*FilesPerNamespace); i++ {
			a := newApp(i, nsIdx, objectsPerFile)
			var err error
			if cueVariant {
				err = writeFile(filepath.Join(nsDir, a.Name+".cue"), a.cue())
			} else {
				err = writeFile(filepath.Join(nsDir, a.Name+".yaml"), a.yaml())
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// splitmix64 is a tiny, fixed pseudo-random function: math/rand's streams
// are not promised to stay the same across Go releases, and the generated
// repository must.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var teams = []string{
	"payments", "search", "checkout", "catalog", "identity", "billing", "growth", "platform",
	"logistics", "inventory", "messaging", "media", "analytics", "support", "pricing", "fraud",
	"reviews", "shipping", "loyalty", "ads",
}

var nouns = []string{
	"cart", "order", "invoice", "ledger", "user", "session", "token", "profile", "feed", "index",
	"report", "ticket", "coupon", "review", "stock", "route", "quote", "rating", "event", "asset",
	"media", "email", "sms", "webhook", "export",
}

var roles = []string{"api", "worker", "gateway", "sync", "scheduler", "frontend", "indexer", "proxy"}

// namespaceName is "<team>-<NN>", unique per index.
func namespaceName(i int) string { return fmt.Sprintf("%s-%02d", teams[i%len(teams)], i) }

func teamOf(nsIdx int) string { return teams[nsIdx%len(teams)] }

// app is the parameters of one file's objects; both renderings (YAML and
// CUE) derive every object from them, so the variants hold the same objects.
type app struct {
	Namespace, Team, Name string
	DefinesNamespace      bool // YAML: this file also holds the Namespace
	NamespaceIndex        int

	Version              string
	Replicas, Port       int
	CPU, Memory, MemLim  string
	LogLevel             string
	Sidecar, Recreate    bool
	NodePort             int // 0: a ClusterIP Service
	DBURL, Flags         string
	AppYAML, Token, Cert string
	Extras               []string // contents of the extra ConfigMaps, mounted as volumes
}

func newApp(i, nsIdx, objectsPerFile int) app {
	h := splitmix64(uint64(i))
	pick := func(shift uint, s []string) string { return s[int(h>>shift%uint64(len(s)))] }
	a := app{
		Namespace:        namespaceName(nsIdx),
		Team:             teamOf(nsIdx),
		Name:             fmt.Sprintf("%s-%s-%d", nouns[i%len(nouns)], roles[(i/len(nouns))%len(roles)], i),
		DefinesNamespace: i%FilesPerNamespace == 0,
		NamespaceIndex:   nsIdx,
		Version:          fmt.Sprintf("1.%d.%d", h>>8%20, h>>16%10),
		Replicas:         1 + int(h>>24%4),
		Port:             []int{8080, 8000, 3000, 9000}[h>>28%4],
		CPU:              pick(32, []string{"50m", "100m", "250m", "500m", "1"}),
		Memory:           pick(36, []string{"64Mi", "128Mi", "256Mi", "512Mi"}),
		LogLevel:         pick(40, []string{"info", "info", "warn", "debug"}),
		Sidecar:          h>>44%3 == 0,
		Recreate:         h>>48%7 == 0,
	}
	a.MemLim = map[string]string{"64Mi": "128Mi", "128Mi": "256Mi", "256Mi": "512Mi", "512Mi": "1Gi"}[a.Memory]
	if i%25 == 7 {
		a.NodePort = 30000 + i/25 // unique per Service, as a cluster needs
	}
	a.DBURL = fmt.Sprintf("postgres://%s@db.%s.svc:5432/%s?sslmode=require", a.Name, a.Namespace, strings.ReplaceAll(a.Name, "-", "_"))
	a.Flags = strings.Join([]string{"new-checkout", "fast-search", "dark-mode", "beta-api"}[:1+h>>52%4], ",")
	a.AppYAML = fmt.Sprintf("server:\n  port: %d\n  logLevel: %s\ndatabase:\n  url: %s\n  pool: %d\nfeatures: [%s]\n",
		a.Port, a.LogLevel, a.DBURL, 5+h>>56%20, a.Flags)
	a.Token = fmt.Sprintf("tok_%016x%016x", h, splitmix64(h))
	var cert strings.Builder
	cert.WriteString("-----BEGIN CERTIFICATE-----\n")
	for l := range 6 {
		b := make([]byte, 48)
		for j := range b {
			b[j] = byte(splitmix64(h + uint64(l*48+j)))
		}
		cert.WriteString(base64.StdEncoding.EncodeToString(b) + "\n")
	}
	cert.WriteString("-----END CERTIFICATE-----\n")
	a.Cert = cert.String()
	extras := objectsPerFile - 4
	if a.DefinesNamespace {
		extras--
	}
	for k := range extras {
		a.Extras = append(a.Extras, fmt.Sprintf("<!doctype html>\n<title>%s</title>\n<h1>%s, part %d</h1>\n", a.Name, a.Name, k))
	}
	return a
}

// yamlBlock writes s as a literal block scalar at the given indentation.
func yamlBlock(s string, indent string) string {
	chomp := "|"
	if !strings.HasSuffix(s, "\n") {
		chomp = "|-"
	}
	var b strings.Builder
	b.WriteString(chomp + "\n")
	for line := range strings.SplitSeq(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(indent + line + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (a app) yaml() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	if a.DefinesNamespace {
		w("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    example.com/team: %s\n---\n", a.Namespace, a.Team)
	}

	w(`# %[1]s: owned by team %[3]s.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
  labels:
    app.kubernetes.io/name: %[1]s
    app.kubernetes.io/part-of: %[3]s
  annotations:
    example.com/owner: %[3]s@example.com
spec:
  replicas: %[4]d
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: %[1]s
`, a.Name, a.Namespace, a.Team, a.Replicas)
	if a.Recreate {
		w("  strategy:\n    type: Recreate\n")
	} else {
		w("  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 1\n      maxUnavailable: 0\n")
	}
	w(`  template:
    metadata:
      labels:
        app.kubernetes.io/name: %[1]s
        app.kubernetes.io/version: "%[2]s"
    spec:
      containers:
        - name: app
          image: registry.example.com/%[3]s/%[1]s:%[2]s
          imagePullPolicy: IfNotPresent
          args: ["--config=/etc/app/app.yaml", "--listen=:%[4]d"]
          env:
            - name: LOG_LEVEL
              value: %[5]s
            - name: DATABASE_URL
              valueFrom:
                configMapKeyRef:
                  name: %[1]s-config
                  key: DATABASE_URL
            - name: FEATURE_FLAGS
              valueFrom:
                configMapKeyRef:
                  name: %[1]s-config
                  key: FEATURE_FLAGS
            - name: API_TOKEN
              valueFrom:
                secretKeyRef:
                  name: %[1]s-secret
                  key: API_TOKEN
          ports:
            - name: http
              containerPort: %[4]d
          resources:
            requests:
              cpu: %[6]s
              memory: %[7]s
            limits:
              memory: %[8]s
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            tcpSocket:
              port: http
            failureThreshold: 6
          volumeMounts:
            - name: config
              mountPath: /etc/app
              readOnly: true
            - name: tls
              mountPath: /etc/tls
              readOnly: true
            - name: tmp
              mountPath: /tmp
`, a.Name, a.Version, a.Namespace, a.Port, a.LogLevel, a.CPU, a.Memory, a.MemLim)
	for k := range a.Extras {
		w("            - name: files-%d\n              mountPath: /srv/files/%d\n              readOnly: true\n", k, k)
	}
	w(`          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
`)
	if a.Sidecar {
		w(`        - name: metrics
          image: registry.example.com/platform/metrics-exporter:0.9.2
          args: ["--scrape=http://localhost:%d/metrics"]
          ports:
            - name: metrics
              containerPort: 9102
          resources:
            requests:
              cpu: 10m
              memory: 16Mi
            limits:
              memory: 32Mi
          readinessProbe:
            httpGet:
              path: /metrics
              port: metrics
`, a.Port)
	}
	w(`      volumes:
        - name: config
          configMap:
            name: %[1]s-config
            items:
              - key: app.yaml
                path: app.yaml
        - name: tls
          secret:
            secretName: %[1]s-secret
            items:
              - key: tls.crt
                path: tls.crt
            defaultMode: 288
        - name: tmp
          emptyDir:
            medium: Memory
            sizeLimit: 64Mi
`, a.Name)
	for k := range a.Extras {
		w("        - name: files-%d\n          configMap:\n            name: %s-files-%d\n", k, a.Name, k)
	}

	w("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %[1]s\n  namespace: %[2]s\n  labels:\n    app.kubernetes.io/name: %[1]s\nspec:\n", a.Name, a.Namespace)
	if a.NodePort > 0 {
		w("  type: NodePort\n")
	}
	w("  selector:\n    app.kubernetes.io/name: %s\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n", a.Name)
	if a.NodePort > 0 {
		w("      nodePort: %d\n", a.NodePort)
	}
	if a.Sidecar {
		w("    - name: metrics\n      port: 9102\n      targetPort: metrics\n")
	}

	w(`---
apiVersion: v1
kind: ConfigMap
metadata:
  name: %[1]s-config
  namespace: %[2]s
data:
  DATABASE_URL: "%[3]s"
  FEATURE_FLAGS: "%[4]s"
  app.yaml: %[5]s
`, a.Name, a.Namespace, a.DBURL, a.Flags, yamlBlock(a.AppYAML, "    "))

	w(`---
apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-secret
  namespace: %[2]s
type: Opaque
data:
  API_TOKEN: %[3]s
  tls.crt: %[4]s
`, a.Name, a.Namespace, base64.StdEncoding.EncodeToString([]byte(a.Token)), base64.StdEncoding.EncodeToString([]byte(a.Cert)))

	for k, content := range a.Extras {
		w("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-files-%d\n  namespace: %s\ndata:\n  index.html: %s\n",
			a.Name, k, a.Namespace, yamlBlock(content, "    "))
	}
	return b.String()
}

// cueString writes s as a CUE string: a multi-line string at the given
// indentation when it has newlines (the generated text has no backslashes
// or triple quotes, which would need escaping).
func cueString(s, indent string) string {
	if !strings.Contains(s, "\n") {
		return strconv.Quote(s)
	}
	var b strings.Builder
	b.WriteString("\"\"\"\n")
	for line := range strings.SplitSeq(s, "\n") {
		if line != "" {
			b.WriteString(indent + "\t" + line)
		}
		b.WriteString("\n")
	}
	b.WriteString(indent + "\t\"\"\"")
	return b.String()
}

func cuePackage(ns string) string { return strings.ReplaceAll(ns, "-", "") }

// cue renders the app's parameters; templates.cue makes the objects.
func (a app) cue() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("package %s\n\n// %s: owned by team %s.\napps: %q: {\n", cuePackage(a.Namespace), a.Name, a.Team, a.Name)
	// A whole number of cores is a number, as in the YAML variant.
	cpu := strconv.Quote(a.CPU)
	if _, err := strconv.Atoi(a.CPU); err == nil {
		cpu = a.CPU
	}
	w("\tversion:  %q\n\treplicas: %d\n\tport:     %d\n\tcpu:      %s\n\tmemory:   %q\n\tmemLimit: %q\n\tlogLevel: %q\n",
		a.Version, a.Replicas, a.Port, cpu, a.Memory, a.MemLim, a.LogLevel)
	if a.Sidecar {
		w("\tsidecar:  true\n")
	}
	if a.Recreate {
		w("\trecreate: true\n")
	}
	if a.NodePort > 0 {
		w("\tnodePort: %d\n", a.NodePort)
	}
	w("\tdbURL:    %q\n\tflags:    %q\n\ttoken:    %q\n", a.DBURL, a.Flags, a.Token)
	w("\tappYAML: %s\n\tcert: %s\n", cueString(a.AppYAML, "\t"), cueString(a.Cert, "\t"))
	if len(a.Extras) > 0 {
		w("\textras: [")
		for k, e := range a.Extras {
			if k > 0 {
				w(", ")
			}
			w("%s", cueString(e, "\t"))
		}
		w("]\n")
	}
	w("}\n")
	return b.String()
}

func cueNamespace(ns string, nsIdx int) string {
	return fmt.Sprintf(`package %s

_ns:   %q
_team: %q

namespace: {
	apiVersion: "v1"
	kind:       "Namespace"
	metadata: {
		name: _ns
		labels: "example.com/team": _team
	}
}
`, cuePackage(ns), ns, teamOf(nsIdx))
}

// cueTemplates is the same for every namespace but for the package clause:
// the namespace and team come from namespace.cue.
func cueTemplates(ns string) string {
	return "package " + cuePackage(ns) + "\n" + cueTemplateBody
}

const cueTemplateBody = `
import "encoding/base64"

// #App is what one app's file sets; everything else is derived here.
#App: {
	version:  string
	replicas: int & >=1
	port:     int
	cpu:      string | int
	memory:   string
	memLimit: string
	logLevel: "debug" | "info" | "warn"
	sidecar:  bool | *false
	recreate: bool | *false
	nodePort: int | *0
	dbURL:    string
	flags:    string
	appYAML:  string
	token:    string
	cert:     string
	extras: [...string]
}

apps: [string]: #App

deployments: {for name, a in apps {(name): #Deployment & {_name: name, _app: a}}}
services: {for name, a in apps {(name): #Service & {_name: name, _app: a}}}
configs: {for name, a in apps {(name): #Config & {_name: name, _app: a}}}
secrets: {for name, a in apps {(name): #Secret & {_name: name, _app: a}}}
// The loop variable is not called name: metadata.name would shadow it.
files: {for appName, a in apps for i, content in a.extras {
	"\(appName)-files-\(i)": {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: {name: "\(appName)-files-\(i)", namespace: _ns}
		data: "index.html": content
	}
}}

#Deployment: {
	_name:      string
	_app:       #App
	apiVersion: "apps/v1"
	kind:       "Deployment"
	metadata: {
		name:      _name
		namespace: _ns
		labels: {
			"app.kubernetes.io/name":    _name
			"app.kubernetes.io/part-of": _team
		}
		annotations: "example.com/owner": "\(_team)@example.com"
	}
	spec: {
		replicas:             _app.replicas
		revisionHistoryLimit: 5
		selector: matchLabels: "app.kubernetes.io/name": _name
		if _app.recreate {
			strategy: type: "Recreate"
		}
		if !_app.recreate {
			strategy: {
				type: "RollingUpdate"
				rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
			}
		}
		template: {
			metadata: labels: {
				"app.kubernetes.io/name":    _name
				"app.kubernetes.io/version": _app.version
			}
			spec: {
				containers: [{
					name:            "app"
					image:           "registry.example.com/\(_ns)/\(_name):\(_app.version)"
					imagePullPolicy: "IfNotPresent"
					args: ["--config=/etc/app/app.yaml", "--listen=:\(_app.port)"]
					env: [
						{name: "LOG_LEVEL", value: _app.logLevel},
						{name: "DATABASE_URL", valueFrom: configMapKeyRef: {name: "\(_name)-config", key: "DATABASE_URL"}},
						{name: "FEATURE_FLAGS", valueFrom: configMapKeyRef: {name: "\(_name)-config", key: "FEATURE_FLAGS"}},
						{name: "API_TOKEN", valueFrom: secretKeyRef: {name: "\(_name)-secret", key: "API_TOKEN"}},
					]
					ports: [{name: "http", containerPort: _app.port}]
					resources: {
						requests: {cpu: _app.cpu, memory: _app.memory}
						limits: memory: _app.memLimit
					}
					readinessProbe: {
						httpGet: {path: "/healthz", port: "http"}
						initialDelaySeconds: 5
						periodSeconds:       10
					}
					livenessProbe: {
						tcpSocket: port: "http"
						failureThreshold: 6
					}
					volumeMounts: [
						{name: "config", mountPath: "/etc/app", readOnly: true},
						{name: "tls", mountPath: "/etc/tls", readOnly: true},
						{name: "tmp", mountPath: "/tmp"},
						for i, _ in _app.extras {name: "files-\(i)", mountPath: "/srv/files/\(i)", readOnly: true},
					]
					securityContext: {
						runAsNonRoot:           true
						runAsUser:              10001
						readOnlyRootFilesystem: true
						capabilities: drop: ["ALL"]
					}
				}, if _app.sidecar {{
					name:  "metrics"
					image: "registry.example.com/platform/metrics-exporter:0.9.2"
					args: ["--scrape=http://localhost:\(_app.port)/metrics"]
					ports: [{name: "metrics", containerPort: 9102}]
					resources: {
						requests: {cpu: "10m", memory: "16Mi"}
						limits: memory: "32Mi"
					}
					readinessProbe: httpGet: {path: "/metrics", port: "metrics"}
				}}]
				volumes: [
					{name: "config", configMap: {name: "\(_name)-config", items: [{key: "app.yaml", path: "app.yaml"}]}},
					{name: "tls", secret: {secretName: "\(_name)-secret", items: [{key: "tls.crt", path: "tls.crt"}], defaultMode: 0o440}},
					{name: "tmp", emptyDir: {medium: "Memory", sizeLimit: "64Mi"}},
					for i, _ in _app.extras {name: "files-\(i)", configMap: name: "\(_name)-files-\(i)"},
				]
			}
		}
	}
}

#Service: {
	_name:      string
	_app:       #App
	apiVersion: "v1"
	kind:       "Service"
	metadata: {
		name:      _name
		namespace: _ns
		labels: "app.kubernetes.io/name": _name
	}
	spec: {
		if _app.nodePort > 0 {
			type: "NodePort"
		}
		selector: "app.kubernetes.io/name": _name
		ports: [{
			name:       "http"
			port:       80
			targetPort: "http"
			if _app.nodePort > 0 {
				nodePort: _app.nodePort
			}
		}, if _app.sidecar {{name: "metrics", port: 9102, targetPort: "metrics"}}]
	}
}

#Config: {
	_name:      string
	_app:       #App
	apiVersion: "v1"
	kind:       "ConfigMap"
	metadata: {name: "\(_name)-config", namespace: _ns}
	data: {
		DATABASE_URL:  _app.dbURL
		FEATURE_FLAGS: _app.flags
		"app.yaml":    _app.appYAML
	}
}

#Secret: {
	_name:      string
	_app:       #App
	apiVersion: "v1"
	kind:       "Secret"
	metadata: {name: "\(_name)-secret", namespace: _ns}
	type: "Opaque"
	data: {
		API_TOKEN: base64.Encode(null, _app.token)
		"tls.crt": base64.Encode(null, _app.cert)
	}
}
`
