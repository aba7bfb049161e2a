package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/berth/berth/appliance/api"
	"github.com/berth/berth/appliance/state"
)

// TestTopTables: kubectl top's columns and units; a pod's containers add
// up, a node's figures are its pods' against its capacity, and a node
// that did not answer is named on stderr and shown as unknown.
func TestTopTables(t *testing.T) {
	usage := []api.NodeUsage{
		{Node: "n1", Containers: []api.ContainerUsage{
			{Namespace: "apps", Pod: "web-1", Container: "web", CPUMilli: 250, MemoryBytes: 30 << 20},
			{Namespace: "apps", Pod: "web-1", Container: "sidecar", CPUMilli: 5, MemoryBytes: 2 << 20},
			{Namespace: "default", Pod: "db-0", Container: "db", CPUMilli: 1, MemoryBytes: 100 << 20}}},
		{Node: "n2", Error: "node is not ready"},
	}
	var out, errs bytes.Buffer
	if err := writeTopPods(&out, &errs, usage, true, false); err != nil {
		t.Fatal(err)
	}
	want := "NAMESPACE   NAME    CPU(cores)   MEMORY(bytes)\napps        web-1   255m         32Mi\ndefault     db-0    1m           100Mi\n"
	if out.String() != want || !strings.Contains(errs.String(), "node n2: node is not ready") {
		t.Errorf("top pods -A:\n%s\nstderr %q", out.String(), errs.String())
	}
	out.Reset()
	if err := writeTopPods(&out, &errs, usage[:1], false, true); err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(out.String(), "\n")[1]; !reflect.DeepEqual(strings.Fields(got), []string{"web-1", "sidecar", "5m", "2Mi"}) {
		t.Errorf("top pods --containers, first row: %q", got)
	}
	out.Reset()
	nodes := []state.Node{{Name: "n1", CPUMilli: 2000, MemoryBytes: 1 << 30}, {Name: "n2"}}
	if err := writeTopNodes(&out, &errs, usage, nodes); err != nil {
		t.Fatal(err)
	}
	want = "NAME   CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)\nn1     256m         12%         132Mi           12%\nn2     <unknown>    <unknown>   <unknown>       <unknown>\n"
	if out.String() != want {
		t.Errorf("top nodes:\n%s", out.String())
	}
}

// TestParseForwards: [LOCAL:]REMOTE as kubectl reads it.
func TestParseForwards(t *testing.T) {
	got, err := parseForwards([]string{"8080", "9000:80", ":443", "0:http", "5000:http"})
	want := []forward{{8080, 8080, "8080"}, {9000, 80, "80"}, {0, 443, "443"}, {0, 0, "http"}, {5000, 0, "http"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseForwards: %+v %v", got, err)
	}
	for _, bad := range []string{"http", "70000:80", "x:80", "80:", "-1:80"} {
		if _, err := parseForwards([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
