package settings

import (
	"cmp"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// valueKind is the TOML kind of a value in the file, with the kinds of an
// array's elements.
type valueKind struct {
	kind  unstable.Kind
	elems []unstable.Kind
}

func kindOf(n *unstable.Node) valueKind {
	v := valueKind{kind: n.Kind}
	if n.Kind == unstable.Array {
		it := n.Children()
		for it.Next() {
			v.elems = append(v.elems, it.Node().Kind)
		}
	}
	return v
}

var durationType = reflect.TypeFor[Duration]()

const durationWant = `a duration with a unit, such as "90s", "15m" or "720h"`

// checkTypes compares the kind of each value in kinds (keys relative to
// prefix) with the Go type of its field in dst, and reports the first
// mismatch in plain words ("want an integer, got a string"). Keys that
// name no field are left to the decoder, which reports them as unknown.
func (s *Source) checkTypes(prefix string, kinds map[string]valueKind, dst any) error {
	root := reflect.TypeOf(dst)
	for root.Kind() == reflect.Pointer {
		root = root.Elem()
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(s.Line(join(prefix, a)), s.Line(join(prefix, b))), strings.Compare(a, b))
	})
	for _, k := range keys {
		t, ok := fieldType(root, stripIndexes(strings.Split(k, ".")))
		if !ok {
			continue
		}
		if msg := mismatch(t, kinds[k]); msg != "" {
			return s.Errorf(join(prefix, k), "%s", msg)
		}
	}
	return nil
}

// fieldType follows the toml tags of parts from t; false when a part
// names no field or enters a free-form table.
func fieldType(t reflect.Type, parts []string) (reflect.Type, bool) {
	for _, part := range parts {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Slice && deref(t.Elem()).Kind() == reflect.Struct {
			t = deref(t.Elem())
		}
		if t.Kind() != reflect.Struct || t == durationType {
			return nil, false
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, true
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldByTag finds the field whose toml name is name, looking into
// embedded structs as the decoder does.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && tag == "" && sf.Type.Kind() == reflect.Struct {
			if f, ok := fieldByTag(sf.Type, name); ok {
				return f, true
			}
			continue
		}
		if tag == name {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// mismatch returns "want X, got Y" when v cannot be decoded into t, else "".
func mismatch(t reflect.Type, v valueKind) string {
	t = deref(t)
	want, ok := accepts(t, v.kind)
	if want == "" {
		return ""
	}
	if !ok {
		if t == durationType && (v.kind == unstable.Integer || v.kind == unstable.Float) {
			return "want " + durationWant + `, got a bare number (write "5s", not 5)`
		}
		return "want " + want + ", got " + kindWord(v.kind)
	}
	if t.Kind() == reflect.Slice && deref(t.Elem()).Kind() != reflect.Struct {
		for _, e := range v.elems {
			if _, ok := accepts(deref(t.Elem()), e); !ok {
				return "want " + want + ", got a list holding " + kindWord(e)
			}
		}
	}
	return ""
}

// accepts describes what t wants and whether a value of kind k fits; want
// is "" for free-form targets.
func accepts(t reflect.Type, k unstable.Kind) (want string, ok bool) {
	if t == durationType {
		return durationWant, k == unstable.String
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string", k == unstable.String
	}
	switch t.Kind() {
	case reflect.String:
		return "a string", k == unstable.String
	case reflect.Bool:
		return "true or false", k == unstable.Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer", k == unstable.Integer
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer", k == unstable.Integer
	case reflect.Float32, reflect.Float64:
		return "a number", k == unstable.Integer || k == unstable.Float
	case reflect.Slice, reflect.Array:
		e := deref(t.Elem())
		if e.Kind() == reflect.Struct && e != durationType {
			return "an array of tables ([[...]])", k == unstable.Array
		}
		inner, _ := accepts(e, unstable.Invalid)
		if inner == "" {
			return "a list", k == unstable.Array
		}
		return "a list of " + plural(inner), k == unstable.Array
	case reflect.Struct, reflect.Map:
		return "a table", k == unstable.InlineTable
	}
	return "", true
}

func plural(want string) string {
	switch want {
	case "a string":
		return "strings"
	case "an integer":
		return "integers"
	case "a number":
		return "numbers"
	case "true or false":
		return "booleans"
	case "a table":
		return "tables"
	}
	return "values"
}

func kindWord(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a decimal number"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "a list"
	case unstable.InlineTable:
		return "a table"
	case unstable.DateTime, unstable.LocalDate, unstable.LocalDateTime, unstable.LocalTime:
		return "a date or time"
	}
	return "a value of another type"
}

var goTypeMismatch = regexp.MustCompile(`cannot (?:decode|store) TOML (\w[\w ]*?) into`)

// plainDecodeError is the decoder's message without Go type names, which
// mean nothing to an operator (and would reveal undocumented fields).
func plainDecodeError(de *toml.DecodeError) string {
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if m := goTypeMismatch.FindStringSubmatch(msg); m != nil {
		return "wrong type of value: got a TOML " + m[1]
	}
	return msg
}
