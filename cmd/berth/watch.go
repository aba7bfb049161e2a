package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/berth/berth/appliance/api"
)

// watchWait is how long one blocking query waits for a change.
const watchWait = 5 * time.Minute

// watch prints, after the listing lists, each object that changes (or
// goes) as the state's index moves past index, until ctx ends: as kubectl
// get -w, a row without a header per change, an object per change in the
// structured formats. A change is a change of what the API lists for the
// object; time passing alone (AGE) is none.
func watch(ctx context.Context, c *api.Client, w io.Writer, p *printer, lists []listing, index uint64, names []string, namespace string, sel labels.Selector) error {
	seen := map[string]map[string]item{}
	for _, l := range lists {
		seen[l.kind] = byKey(l.items)
	}
	for {
		next, err := c.WaitIndex(ctx, index, watchWait)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return &exitError{1, err}
		}
		if next == index {
			continue
		}
		index = next
		for _, l := range lists {
			now, err := list(ctx, c, l.kind)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return &exitError{1, err}
			}
			now.items, _ = selectItems(now.items, names, namespace, sel)
			cur := byKey(now.items)
			changed := now
			changed.items = nil
			for _, it := range now.items {
				if old, ok := seen[l.kind][keyOf(it)]; !ok || !sameAPI(old, it) {
					changed.items = append(changed.items, it)
				}
			}
			for k, it := range seen[l.kind] {
				if _, ok := cur[k]; !ok {
					changed.items = append(changed.items, it) // gone: its last row, as kubectl's DELETED event
				}
			}
			seen[l.kind] = cur
			if err := p.changes(w, changed, len(lists) > 1); err != nil {
				return err
			}
		}
	}
}

func keyOf(it item) string { return it.namespace + "/" + it.name }

func byKey(items []item) map[string]item {
	m := map[string]item{}
	for _, it := range items {
		m[keyOf(it)] = it
	}
	return m
}

func sameAPI(a, b item) bool {
	ja, _ := json.Marshal(a.api)
	jb, _ := json.Marshal(b.api)
	return bytes.Equal(ja, jb)
}

// changes writes a watch's changed items: rows without a header, or each
// object on its own.
func (p *printer) changes(w io.Writer, l listing, kindNames bool) error {
	if len(l.items) == 0 {
		return nil
	}
	switch p.format {
	case "", "wide":
		return printTable(w, l, p.format == "wide", false, kindNames)
	case "name":
		return p.print(w, []listing{l}, false)
	}
	for _, it := range l.items {
		if err := p.structured(w, it.kube); err != nil {
			return err
		}
	}
	return nil
}
