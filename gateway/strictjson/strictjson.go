// Package strictjson decodes JSON as encoding/json does, but refuses what
// encoding/json lets through and a reader of the same bytes might take
// otherwise: data after the value (a stray closing bracket included), an
// object key given twice (encoding/json keeps the last), and a key that
// names a struct field only when case is ignored (encoding/json matches
// {"ACTION": ...} to the field "action"). Every JSON body and manifest
// part goes through Unmarshal.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// Unmarshal decodes data, one JSON value and nothing after it but white
// space, into v, refusing duplicate keys and keys that match a field of
// v's structs only case-insensitively. The error names the key's path.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := walk(dec, reflect.TypeOf(v), "$", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return json.Unmarshal(data, v)
}

// maxDepth matches encoding/json's nesting limit, so that the walk fails
// where Unmarshal would.
const maxDepth = 10000

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk reads one value from dec; t is the Go type it decodes into, or nil
// where any key goes (interfaces, types that decode themselves).
func walk(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: nested too deeply", path)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil
	}
	switch tok {
	case json.Delim('{'):
		var fs map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fs = fieldsOf(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			key, _ := kt.(string)
			at := path + "." + key
			if seen[key] {
				return fmt.Errorf("%s: key %q given twice", path, key)
			}
			seen[key] = true
			var et reflect.Type
			switch {
			case fs != nil:
				var ok bool
				if et, ok = fs[key]; !ok {
					for name := range fs {
						if strings.EqualFold(name, key) {
							return fmt.Errorf("%s: key %q is not %q: keys are case-sensitive", path, key, name)
						}
					}
				}
			case t != nil && t.Kind() == reflect.Map:
				et = t.Elem()
			}
			if err := walk(dec, et, at, depth+1); err != nil {
				return err
			}
		}
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, et, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	default:
		return nil
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf returns the JSON names of t's fields, as encoding/json sees
// them (tags, "-", embedded structs), with their types.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(map[string]reflect.Type)
	}
	fs := map[string]reflect.Type{}
	addFields(t, fs, 0)
	fieldCache.Store(t, fs)
	return fs
}

func addFields(t reflect.Type, fs map[string]reflect.Type, depth int) {
	if depth > 16 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, fs, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, ok := fs[name]; !ok || depth == 0 {
			fs[name] = f.Type
		}
	}
}
