package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// filledState sets every exported field reachable from State, including
// fields added later, to a non-zero value: two elements per slice, two
// entries per map, every pointer set.
func filledState() *State {
	s := &State{}
	fill(reflect.ValueOf(s).Elem())
	return s
}

func fill(v reflect.Value) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.SetBytes([]byte(`{"k":[1,2]}`))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			k.SetString(fmt.Sprintf("k%d", i))
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	default:
		panic("fill: add a case for " + v.Type().String())
	}
}

// shared reports the first pointer, map or slice array that a and b share.
func shared(path string, a, b reflect.Value) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(path, a.Elem(), b.Elem())
	case reflect.Map:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for _, k := range a.MapKeys() {
			if p := shared(fmt.Sprintf("%s[%v]", path, k), a.MapIndex(k), b.MapIndex(k)); p != "" {
				return p
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i)); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if f := a.Type().Field(i); f.IsExported() {
				if p := shared(path+"."+f.Name, a.Field(i), b.Field(i)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	s := filledState()
	c := s.Clone()
	if !reflect.DeepEqual(s, c) {
		t.Fatal("the clone differs from the original: a field is not copied")
	}
	if p := shared("State", reflect.ValueOf(s), reflect.ValueOf(c)); p != "" {
		t.Fatalf("the clone shares %s with the original", p)
	}
}

func TestCloneKeepsNilApart(t *testing.T) {
	t.Parallel()
	s := &State{Revisions: []Revision{{Objects: []Object{}}}}
	c := s.Clone()
	if c.Revisions[0].Objects == nil || c.Revisions[0].Diagnostics != nil {
		t.Errorf("nil and empty slices must survive a clone: %#v", c.Revisions[0])
	}
	if c.Nodes == nil || c.Pods == nil || c.ServiceIPs == nil {
		t.Error("a clone's maps must be writable")
	}
}

func BenchmarkClone(b *testing.B) {
	s := cluster(b)
	for i := range 1000 {
		p := testPod("bench", fmt.Sprint(i))
		s.Pods[p.Key()] = &p
	}
	for b.Loop() {
		s.Clone()
	}
}
