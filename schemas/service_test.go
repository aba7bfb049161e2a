package schemas

import (
	"fmt"
	"slices"
	"testing"

	"github.com/berth/berth/schemas/diag"
	"github.com/berth/berth/schemas/objects"
)

// kubectlLoadBalancer is a LoadBalancer Service as `kubectl get -o yaml`
// writes it, status and all.
const kubectlLoadBalancer = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  allocateLoadBalancerNodePorts: true
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  loadBalancerSourceRanges: [192.168.0.0/16, 10.1.2.3/8]
  ports:
  - {name: http, nodePort: 31080, port: 80, protocol: TCP, targetPort: 8080}
  - {name: dns, nodePort: 31053, port: 53, protocol: UDP}
  - {name: dns-tcp, nodePort: 31053, port: 53, protocol: TCP}
  publishNotReadyAddresses: true
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  type: LoadBalancer
status:
  loadBalancer:
    ingress: [{ip: 10.0.0.2}]
`

func TestServiceFieldsAccepted(t *testing.T) {
	res := loadRepo(t, map[string]string{"lb.yaml": kubectlLoadBalancer,
		"headless.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  clusterIP: None\n  clusterIPs: [None]\n  internalTrafficPolicy: Cluster\n  selector: {app: db}\n  ports: [{port: 5432}]\n",
		"np.yaml":       "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n  type: NodePort\n  externalTrafficPolicy: Cluster\n  sessionAffinity: None\n  selector: {app: web}\n  ports: [{port: 80}]\n",
	})
	for _, d := range res.Diagnostics {
		if d.Severity == diag.Error {
			t.Errorf("%s", d)
		}
	}
	byName := map[string]*objects.ServiceSpec{}
	for _, o := range res.Objects {
		s := o.Object.(*objects.Service)
		byName[s.Metadata.Name] = &s.Spec
	}
	lb := byName["web"]
	if lb == nil || lb.AffinityTimeout() != 600 || !lb.AllocatesNodePorts() || lb.ExternalTrafficPolicy != "Local" ||
		!lb.PublishNotReadyAddresses || len(lb.LoadBalancerSourceRanges) != 2 || lb.Ports[1].NodePort != 31053 {
		t.Errorf("LoadBalancer: %+v", lb)
	}
	if db := byName["db"]; db == nil || !db.Headless() || db.AllocatesNodePorts() {
		t.Errorf("headless: %+v", db)
	}
	if np := byName["np"]; np == nil || np.AffinityTimeout() != 0 || !np.AllocatesNodePorts() {
		t.Errorf("NodePort: %+v", np)
	}
}

// Each field berth cannot honour is refused, saying why, rather than
// accepted and ignored.
func TestServiceFieldsRefused(t *testing.T) {
	svc := func(spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: x}\n  ports: [{port: 80}]\n" + spec
	}
	for _, tc := range []struct{ spec, want string }{
		{"  type: ExternalName\n", `4:1: error: spec: missing required field "externalName"`},
		{"  type: ExternalName\n  externalName: db.example.com\n", `5:13: error: spec.selector: an ExternalName Service is a DNS alias: it has no selector`},
		{"  type: LoadBalancer\n  loadBalancerIP: 10.0.0.9\n", "8:3: error: spec.loadBalancerIP: berth does not support this field"},
		{"  type: LoadBalancer\n  healthCheckNodePort: 32000\n", "8:3: error: spec.healthCheckNodePort: berth does not support this field"},
		{"  externalTrafficPolicy: Local\n", `7:3: error: spec.externalTrafficPolicy: field not allowed here: only when type is "NodePort" or "LoadBalancer"`},
		{"  type: NodePort\n  allocateLoadBalancerNodePorts: false\n", `8:3: error: spec.allocateLoadBalancerNodePorts: field not allowed here: only when type is "LoadBalancer"`},
		{"  sessionAffinityConfig: {clientIP: {timeoutSeconds: 5}}\n", `7:3: error: spec.sessionAffinityConfig: field not allowed here: only when sessionAffinity is "ClientIP"`},
		{"  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}\n", "8:54: error: spec.sessionAffinityConfig.clientIP.timeoutSeconds"},
		{"  type: NodePort\n  clusterIP: None\n", "8:14: error: spec.clusterIP: a NodePort Service needs a ClusterIP"},
		{"  clusterIP: None\n  sessionAffinity: ClientIP\n", "8:20: error: spec.sessionAffinity: a headless Service is not proxied"},
		{"  clusterIP: None\n  internalTrafficPolicy: Local\n", "8:26: error: spec.internalTrafficPolicy: a headless Service is not proxied"},
		{"  clusterIP: 10.96.0.5\n  clusterIPs: [10.96.0.6]\n", `8:15: error: spec.clusterIPs: must be [clusterIP] (here ["10.96.0.5"])`},
		{"  clusterIPs: [10.96.0.6]\n", `7:15: error: spec.clusterIPs: must be [clusterIP] (here [""])`},
		{"  ipFamilies: [IPv6]\n", `7:16: error: spec.ipFamilies[0]: invalid value "IPv6": want #IPv4Family ("IPv4": berth gives Services IPv4 addresses only)`},
		{"  ipFamilies: [IPv4, IPv4]\n", "7:15: error: spec.ipFamilies: berth gives a Service one IPv4 address"},
		{"  ipFamilyPolicy: RequireDualStack\n", "7:19: error: spec.ipFamilyPolicy: invalid value \"RequireDualStack\": want #SingleStack"},
		{"  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/8, 300.0.0.0/8]\n", `8:42: error: spec.loadBalancerSourceRanges[1]: "300.0.0.0/8" is not an IPv4 address range`},
		{"  type: LoadBalancer\n  loadBalancerSourceRanges: [fd00::/8]\n", "8:30: error: spec.loadBalancerSourceRanges[0]: invalid value"},
	} {
		res := loadRepo(t, map[string]string{"s.yaml": svc(tc.spec)})
		onlyErrors(res)
		assertDiags(t, res, "s.yaml:"+tc.want)
	}
}

// An ExternalName Service is an alias, without ports; any other Service
// needs one.
func TestExternalNameService(t *testing.T) {
	alias := "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec:\n  type: ExternalName\n  externalName: db.prod.example.com\n"
	assertDiags(t, loadRepo(t, map[string]string{"s.yaml": alias}))
	portless := "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  selector: {app: x}\n"
	res := loadRepo(t, map[string]string{"s.yaml": portless})
	onlyErrors(res)
	assertDiags(t, res, "s.yaml:5:3: error: spec: a Service needs at least one port (an ExternalName Service none)")
}

// A node port and a LoadBalancer's port on the nodes' addresses are one
// Service's each, as a pinned ClusterIP is; one number may serve the TCP
// and the UDP port of one Service.
func TestServicePortClaims(t *testing.T) {
	svc := func(name, typ, ports string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec:\n  type: %s\n  selector: {app: x}\n  ports:\n%s", name, typ, ports)
	}
	res := loadRepo(t, map[string]string{
		"a.yaml": svc("a", "NodePort", "  - {name: d, port: 53, protocol: UDP, nodePort: 30053}\n  - {name: t, port: 53, nodePort: 30053}\n"),
		"b.yaml": svc("b", "LoadBalancer", "  - {port: 80, protocol: UDP, nodePort: 30053}\n"),
		"c.yaml": svc("c", "LoadBalancer", "  - {port: 80, protocol: UDP}\n"),
		"d.yaml": svc("d", "NodePort", "  - {name: x, port: 80, nodePort: 30100}\n  - {name: y, port: 81, nodePort: 30100}\n"),
		"e.yaml": svc("e", "ClusterIP", "  - {port: 80, nodePort: 30101}\n"),
	})
	onlyErrors(res)
	assertDiags(t, res,
		"b.yaml:8:41: error: nodePort 30053 is pinned by Service default/a too; a node port belongs to one Service",
		"c.yaml:8:12: error: port 80/UDP on the nodes' addresses is taken by Service default/b too",
		"d.yaml:9:35: error: spec.ports[1].nodePort: nodePort 30100/TCP is used twice",
		"e.yaml:8:26: error: spec.ports[0].nodePort: nodePort is only allowed when spec.type is NodePort or LoadBalancer",
	)
}

// onlyErrors drops the warnings (selectors that match nothing).
func onlyErrors(res *Result) {
	res.Diagnostics = slices.DeleteFunc(res.Diagnostics, func(d diag.Diagnostic) bool { return d.Severity != diag.Error })
}
