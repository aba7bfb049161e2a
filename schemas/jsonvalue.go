package schemas

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The checker returns each object as a tree of map[string]any, []any,
// string, int64, float64, bool and nil. The loader needs it twice: as JSON
// (Loaded.JSON, hashed and stored by the masters) and as a Go struct.
// Going through encoding/json for both (Marshal, then Unmarshal of those
// bytes) cost a fifth of a load: reflection over interfaces, sorting, then
// scanning and re-allocating every string. The two functions below do the
// same work directly on the tree, for the shapes the checker produces, and
// give the same result as encoding/json; anything else falls back to it.

// appendJSON appends v as json.Marshal would encode it: object keys sorted,
// HTML-sensitive characters escaped.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		var small [16]string // most maps of a spec are small: no allocation
		keys := small[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, el := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, el); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		return appendJSONString(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case nil:
		return append(b, "null"...), nil
	}
	// Floats (encoding/json has its own formatting rules) and anything
	// unexpected.
	enc, err := json.Marshal(v)
	return append(b, enc...), err
}

// appendJSONString quotes s as encoding/json does. Printable ASCII without
// '"', '\\' and the HTML-sensitive '<', '>', '&' is written as is; any other
// string, rare in specs, is left to encoding/json and its escaping rules.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// fillFrom sets *dst (a pointer to one of the object types) from v as
// json.Unmarshal of v's JSON would, and reports whether it could. It
// declines, leaving *dst partly set, on any value or type it does not
// handle exactly as encoding/json does (a key matching a field only
// case-insensitively, a number that does not fit, a null, interfaces); a
// key no field has, as encoding/json, it skips. The caller
// then decodes a fresh object with json.Unmarshal, which also gives the
// error when there is one.
func fillFrom(dst any, v any) bool {
	return fill(reflect.ValueOf(dst).Elem(), v)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func fill(dst reflect.Value, v any) bool {
	t := dst.Type()
	d, ok := decoderCache.Load(t)
	if !ok {
		decoders.Lock()
		d = decoderFor(t)
		decoders.Unlock()
		decoderCache.Store(t, d)
	}
	return d.(decoder)(dst, v)
}

// decoder sets an addressable value of one type from a checked value.
type decoder func(dst reflect.Value, v any) bool

var (
	decoderCache sync.Map // reflect.Type -> decoder, of complete decoders
	decoders     = struct {
		sync.Mutex
		m map[reflect.Type]decoder
	}{m: map[reflect.Type]decoder{}}
)

// decoderFor returns the decoder of t, built once per type: deciding per
// value whether a type has UnmarshalJSON, or which field a key names,
// would cost more than the decoding itself. decoders must be locked.
func decoderFor(t reflect.Type) decoder {
	if d, ok := decoders.m[t]; ok {
		return d
	}
	// A recursive type reaches itself through this indirection while its
	// decoder is being built; d is set before the lock is released.
	var d decoder
	decoders.m[t] = func(dst reflect.Value, v any) bool { return d(dst, v) }
	d = newDecoder(t)
	decoders.m[t] = d
	return d
}

func decline(reflect.Value, any) bool { return false }

func newDecoder(t reflect.Type) decoder {
	if pt := reflect.PointerTo(t); pt.Implements(jsonUnmarshaler) {
		return func(dst reflect.Value, v any) bool {
			if v == nil {
				return false
			}
			b, err := appendJSON(nil, v)
			return err == nil && dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b) == nil
		}
	} else if pt.Implements(textUnmarshaler) {
		return decline
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := decoderFor(t.Elem())
		return func(dst reflect.Value, v any) bool {
			if v == nil {
				return false
			}
			if dst.IsNil() {
				dst.Set(reflect.New(t.Elem()))
			}
			return elem(dst.Elem(), v)
		}
	case reflect.Struct:
		type structField struct {
			index []int
			dec   decoder
		}
		names := structFields(t)
		if names == nil {
			return decline
		}
		fields := make(map[string]structField, len(names))
		for name, index := range names {
			fields[name] = structField{index, decoderFor(t.FieldByIndex(index).Type)}
		}
		// folds: encoding/json would match k to a field case-insensitively.
		folds := func(k string) bool {
			for name := range fields {
				if strings.EqualFold(name, k) {
					return true
				}
			}
			return false
		}
		return func(dst reflect.Value, v any) bool {
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for k, val := range m {
				f, ok := fields[k]
				if !ok {
					if folds(k) {
						return false
					}
					continue // no field has it (an object's status): encoding/json skips it too
				}
				if !f.dec(dst.FieldByIndex(f.index), val) {
					return false
				}
			}
			return true
		}
	case reflect.Map:
		if t.Key() != reflect.TypeFor[string]() {
			return decline
		}
		if t.Elem() == reflect.TypeFor[string]() {
			// Labels, annotations, data: most maps of a spec.
			return func(dst reflect.Value, v any) bool {
				m, ok := v.(map[string]any)
				if !ok {
					return false
				}
				out := make(map[string]string, len(m))
				for k, val := range m {
					s, ok := val.(string)
					if !ok {
						return false
					}
					out[k] = s
				}
				if dst.IsNil() {
					dst.Set(reflect.ValueOf(out).Convert(t))
					return true
				}
				for k, s := range out {
					dst.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s).Convert(t.Elem()))
				}
				return true
			}
		}
		elem := decoderFor(t.Elem())
		return func(dst reflect.Value, v any) bool {
			m, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if dst.IsNil() {
				dst.Set(reflect.MakeMapWithSize(t, len(m)))
			}
			for k, val := range m {
				el := reflect.New(t.Elem()).Elem()
				if !elem(el, val) {
					return false
				}
				dst.SetMapIndex(reflect.ValueOf(k), el)
			}
			return true
		}
	case reflect.Slice:
		elem := decoderFor(t.Elem())
		return func(dst reflect.Value, v any) bool {
			l, ok := v.([]any)
			if !ok {
				return false
			}
			// encoding/json leaves an empty, not a nil, slice for [].
			s := reflect.MakeSlice(t, len(l), len(l))
			for i, el := range l {
				if !elem(s.Index(i), el) {
					return false
				}
			}
			dst.Set(s)
			return true
		}
	case reflect.String:
		return func(dst reflect.Value, v any) bool {
			s, ok := v.(string)
			if ok {
				dst.SetString(s)
			}
			return ok
		}
	case reflect.Bool:
		return func(dst reflect.Value, v any) bool {
			b, ok := v.(bool)
			if ok {
				dst.SetBool(b)
			}
			return ok
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(dst reflect.Value, v any) bool {
			n, ok := v.(int64)
			if !ok || dst.OverflowInt(n) {
				return false
			}
			dst.SetInt(n)
			return true
		}
	}
	return decline
}

// structFields maps the JSON names of a struct type's fields, promoted
// fields of embedded structs included, to their indexes. It is nil for a
// struct whose fields need encoding/json's rules for conflicts or embedded
// pointers.
func structFields(t reflect.Type) map[string][]int {
	fields := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous {
			if f.Type.Kind() != reflect.Struct || f.Tag.Get("json") != "" {
				fields = nil
				break
			}
			continue // its fields are visible too
		}
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag := f.Tag.Get("json"); tag != "" {
			name = tag
			for i := range len(tag) {
				if tag[i] == ',' {
					name = tag[:i]
					break
				}
			}
			if name == "-" && len(tag) == 1 {
				continue
			}
			if name == "" {
				name = f.Name
			}
		}
		if _, dup := fields[name]; dup {
			fields = nil
			break
		}
		fields[name] = f.Index
	}
	return fields
}
