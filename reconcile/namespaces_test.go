package reconcile

import (
	"testing"

	"github.com/berth/berth/schemas/objects"
)

// A Namespace removed from the repository with its objects goes in
// dependency order: its pods stop while its Service (and ClusterIP),
// ConfigMap and claim stay; then the claim is released and what the
// namespace left is forgotten; then the ClusterIP is freed.
func TestNamespaceRemovalInDependencyOrder(t *testing.T) {
	h := newHarness(t, node("n1"))
	ns := &objects.Namespace{}
	ns.APIVersion, ns.Kind, ns.Metadata.Name = "v1", "Namespace", "shop"
	web := deployment("web", 2, "1")
	web.Metadata.Namespace = "shop"
	web.Spec.Template.Spec.Volumes = []objects.Volume{{Name: "data", PersistentVolumeClaim: &objects.ClaimVolumeSource{ClaimName: "data"}}}
	svc := service("web", "")
	svc.Metadata.Namespace = "shop"
	cfg := &objects.ConfigMap{Data: map[string]string{"k": "v"}}
	cfg.APIVersion, cfg.Kind, cfg.Metadata = "v1", "ConfigMap", objects.ObjectMeta{Name: "cfg", Namespace: "shop"}
	pvc := claimObject("data", "1Gi", "ReadWriteOnce")
	pvc.Metadata.Namespace = "shop"
	h.commit(ns, web, svc, cfg, pvc)
	h.settle(3)
	if _, ready := h.pods(); ready != 2 || h.s.ServiceIPs["shop/web"] == "" || h.s.Claims["shop/data"].NodeName != "n1" {
		t.Fatalf("before: %d ready, IP %q, claim %+v", ready, h.s.ServiceIPs["shop/web"], h.s.Claims["shop/data"])
	}

	h.commit() // the Namespace and everything in it leave the repository
	h.control()
	d := h.desired()
	if len(d.Deployments) != 0 || len(d.Services) != 1 || d.ConfigMaps["shop/cfg"] == nil {
		t.Fatalf("while the pods stop: %d deployments, %d services, configmap %v", len(d.Deployments), len(d.Services), d.ConfigMaps["shop/cfg"])
	}
	if byHash, _ := h.pods(); len(byHash) != 0 || h.s.Pods.Len() != 2 {
		t.Fatalf("pods not stopping: live %v, %d in the state", byHash, h.s.Pods.Len())
	}
	if h.s.ServiceIPs["shop/web"] == "" || h.s.Claims["shop/data"].Released || len(h.s.Terminating["shop"]) != 2 {
		t.Fatalf("gone before the pods: IP %q, claim %+v, terminating %v", h.s.ServiceIPs["shop/web"], h.s.Claims["shop/data"], h.s.Terminating)
	}

	h.agents() // the pods are gone
	h.control()
	if !h.s.Claims["shop/data"].Released || len(h.s.Terminating) != 0 {
		t.Fatalf("after the pods: claim %+v, terminating %v", h.s.Claims["shop/data"], h.s.Terminating)
	}
	h.control()
	if ip, ok := h.s.ServiceIPs["shop/web"]; ok {
		t.Fatalf("ClusterIP %s still held", ip)
	}
}
