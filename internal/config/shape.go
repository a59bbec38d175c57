package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

// shapeErrors checks a JSON document against Config's shape before it is
// decoded, and reports every unknown field and every value of the wrong
// type, each with its full path ("forward[1].mode"). encoding/json stops
// at the first unknown field, names it without its parent, and reports
// only the first type error. It returns nil when the shape is right (or
// when the document is not JSON: the decoder says why).
func shapeErrors(data []byte) FieldErrors {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	var errs FieldErrors
	shape(v, reflect.TypeFor[Config](), "", &errs)
	return errs
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

func shape(v any, t reflect.Type, path string, errs *FieldErrors) {
	if v == nil {
		return // null leaves the field as it was, as encoding/json does
	}
	bad := func(want string) {
		*errs = append(*errs, FieldError{Field: strings.TrimPrefix(path, "."), Reason: fmt.Sprintf("want %s, got JSON %s", want, jsonKind(v))})
	}
	if reflect.PointerTo(t).Implements(unmarshaler) {
		raw, _ := json.Marshal(v)
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			*errs = append(*errs, FieldError{Field: strings.TrimPrefix(path, "."), Reason: err.Error()})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		fields := map[string]reflect.StructField{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fields[strings.ToLower(name)] = f
		}
		for _, k := range sortedKeys(obj) {
			f, ok := fields[strings.ToLower(k)]
			if !ok {
				*errs = append(*errs, FieldError{Field: strings.TrimPrefix(path+"."+k, "."), Reason: "unknown field"})
				continue
			}
			shape(obj[k], f.Type, path+"."+k, errs)
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			bad("an array")
			return
		}
		for i, e := range arr {
			shape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			bad("a number")
			return
		}
		if reflect.Zero(t).CanInt() {
			i, err := n.Int64()
			if err != nil || reflect.New(t).Elem().OverflowInt(i) {
				*errs = append(*errs, FieldError{Field: strings.TrimPrefix(path, "."), Reason: fmt.Sprintf("%s is not an integer that fits %s", n, t)})
			}
			return
		}
		f, err := n.Float64()
		if err != nil || f < 0 || f != math.Trunc(f) || reflect.New(t).Elem().OverflowUint(uint64(f)) {
			*errs = append(*errs, FieldError{Field: strings.TrimPrefix(path, "."), Reason: fmt.Sprintf("%s is not a non-negative integer that fits %s", n, t)})
		}
	}
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case json.Number:
		return "number " + v.String()
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
