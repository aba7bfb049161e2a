package schemas

import (
	"strings"
	"testing"

	"github.com/berth/berth/schemas/objects"
)

const pvcYAML = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: local-path
  resources:
    requests: {storage: 1Gi}
`

const statefulSetYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector:
    matchLabels: {app: db}
  template:
    metadata:
      labels: {app: db}
    spec:
      containers:
        - name: db
          image: example/db:1
          volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOncePod]
        resources:
          requests: {storage: 100Mi}
`

const headlessYAML = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  clusterIP: None\n  selector: {app: db}\n  ports: [{port: 6379}]\n"

const claimPodYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: example/web:1
          volumeMounts: [{name: files, mountPath: /files}]
      volumes:
        - name: files
          persistentVolumeClaim: {claimName: data}
`

func TestStorageKinds(t *testing.T) {
	res := loadRepo(t, map[string]string{"pvc.yaml": pvcYAML, "sts.yaml": statefulSetYAML, "svc.yaml": headlessYAML, "web.yaml": claimPodYAML})
	assertDiags(t, res)
	for _, o := range res.Objects {
		switch o := o.Object.(type) {
		case *objects.StatefulSet:
			s := o.Spec
			if s.PodManagementPolicy != "OrderedReady" || s.UpdateStrategy.Type != "RollingUpdate" || s.UpdateStrategy.RollingUpdate == nil || s.Partition() != 0 {
				t.Errorf("defaults: %+v", s)
			}
			if got := s.VolumeClaimTemplates[0].ClaimName("db", 2); got != "data-db-2" {
				t.Errorf("claim name %q", got)
			}
		case *objects.PersistentVolumeClaim:
			if o.Spec.Resources.Requests.Storage != "1Gi" || *o.Spec.StorageClassName != "local-path" {
				t.Errorf("claim: %+v", o.Spec)
			}
		}
	}
}

func TestStorageRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing claim", map[string]string{"web.yaml": claimPodYAML},
			`web.yaml:17:46: error: PersistentVolumeClaim "data" is not defined in namespace "default"`},
		{"ReadWriteMany", map[string]string{"pvc.yaml": strings.Replace(pvcYAML, "[ReadWriteOnce]", "[ReadWriteMany]", 1)},
			"spec.accessModes[0]: berth does not support ReadWriteMany: a local-path volume lives on one node"},
		{"unknown class", map[string]string{"pvc.yaml": strings.Replace(pvcYAML, "local-path", "gp2", 1)},
			"local-path, berth's one storage class"},
		{"block", map[string]string{"pvc.yaml": pvcYAML + "  volumeMode: Block\n"},
			"berth does not support raw block volumes"},
		{"no storage request", map[string]string{"pvc.yaml": strings.Replace(pvcYAML, "  resources:\n    requests: {storage: 1Gi}\n", "  resources: {}\n", 1)},
			`spec.resources: missing required field "requests"`},
		{"no headless Service", map[string]string{"sts.yaml": statefulSetYAML},
			`sts.yaml:5:16: warning: no headless Service "db" (clusterIP: None) in namespace "default"`},
		{"hostname set", map[string]string{"svc.yaml": headlessYAML, "sts.yaml": strings.Replace(statefulSetYAML, "      containers:", "      hostname: x\n      containers:", 1)},
			"spec.template.spec.hostname: the StatefulSet sets it"},
		{"mount of no template", map[string]string{"svc.yaml": headlessYAML, "sts.yaml": strings.Replace(statefulSetYAML, "{name: data, mountPath", "{name: logs, mountPath", 1)},
			`no volume named "logs"`},
		{"name too long", map[string]string{"svc.yaml": headlessYAML, "sts.yaml": strings.Replace(statefulSetYAML, "{name: db}", "{name: "+strings.Repeat("d", 53)+"}", 1)},
			"a StatefulSet's name must be a DNS label of at most 52 characters"},
		{"retain when deleted", map[string]string{"svc.yaml": headlessYAML, "sts.yaml": statefulSetYAML + "  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain}\n"},
			"berth does not support Retain"},
		{"claim in a DaemonSet", map[string]string{"pvc.yaml": pvcYAML, "ds.yaml": strings.Replace(strings.Replace(claimPodYAML, "Deployment", "DaemonSet", 1), "{name: web}", "{name: ds}", 1)},
			"berth does not support a claim in a DaemonSet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := loadRepo(t, tc.files)
			if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), tc.want) {
				t.Errorf("want one diagnostic with %q, got:\n%v", tc.want, res.Diagnostics)
			}
		})
	}
}

// A hostPath volume reaches only what berth.yaml's allowedHostPaths allow,
// by whole path elements, read-only where the rule says so.
func TestHostPathNeedsTheRepositorysLeave(t *testing.T) {
	pod := func(path, readOnly string) string {
		return strings.NewReplacer("persistentVolumeClaim: {claimName: data}", "hostPath: {path: "+path+", type: DirectoryOrCreate}",
			"mountPath: /files}", "mountPath: /files, readOnly: "+readOnly+"}").Replace(claimPodYAML)
	}
	const cfg = "allowedHostPaths:\n  - pathPrefix: /srv/cache\n  - pathPrefix: /var/log\n    readOnly: true\n  - pathPrefix: /var/log/app/\n"
	for _, tc := range []struct {
		name, cfg, path, readOnly, want string
	}{
		{"no leave", "", "/srv/cache", "false", "hostPath \"/srv/cache\" reaches the node's files, which the repository must allow"},
		{"allowed", cfg, "/srv/cache/x", "false", ""},
		{"the prefix itself", cfg, "/srv/cache", "false", ""},
		{"a sibling that shares letters", cfg, "/srv/cachet", "false", "must allow"},
		{"read-only rule, read-write mount", cfg, "/var/log/syslog", "false", "berth.yaml allows /var/log read-only: container \"web\" must mount volume \"files\" with readOnly: true"},
		{"read-only rule, read-only mount", cfg, "/var/log/syslog", "true", ""},
		{"the longer prefix wins", cfg, "/var/log/app/x", "false", ""},
		{"dot-dot", cfg, "/srv/cache/../../etc", "false", "is not a clean path"},
		{"the whole node", "allowedHostPaths: [{pathPrefix: /}]\n", "/etc", "false", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"web.yaml": pod(tc.path, tc.readOnly)}
			if tc.cfg != "" {
				files["berth.yaml"] = tc.cfg
			}
			res := loadRepo(t, files)
			if tc.want == "" {
				assertDiags(t, res)
				return
			}
			if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0].String(), tc.want) {
				t.Errorf("want one diagnostic with %q, got:\n%v", tc.want, res.Diagnostics)
			}
		})
	}
}
