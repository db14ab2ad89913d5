package settings

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// fields calls fn for each settings field of the struct v, with its key.
func fields(prefix string, v reflect.Value, fn func(key string, f reflect.Value, sf reflect.StructField) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			// An embedded struct's fields belong to the enclosing table.
			if err := fields(prefix, v.Field(i), fn); err != nil {
				return err
			}
			continue
		}
		if name == "-" || name == "" {
			continue
		}
		if err := fn(join(prefix, name), v.Field(i), sf); err != nil {
			return err
		}
	}
	return nil
}

// applyEnv sets every scalar field below prefix whose environment variable
// is set: PREFIX_TABLE_KEY, with indexes for arrays of tables
// (PASEE_IDENTITY_PROVIDERS_0_SETTINGS_APP_SECRET).
func (s *Source) applyEnv(prefix string, dst any) error {
	if s.EnvPrefix == "" || s.Getenv == nil {
		return nil
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("settings: decode target must be a pointer to a struct, not %T", dst)
	}
	return s.walkEnv(prefix, v.Elem())
}

func (s *Source) walkEnv(prefix string, v reflect.Value) error {
	return fields(prefix, v, func(key string, f reflect.Value, _ reflect.StructField) error {
		if f.Addr().Type().Implements(textUnmarshaler) {
			return s.envScalar(key, f)
		}
		switch f.Kind() {
		case reflect.Struct:
			return s.walkEnv(key, f)
		case reflect.Pointer:
			if !f.IsNil() && f.Elem().Kind() == reflect.Struct {
				return s.walkEnv(key, f.Elem())
			}
			return nil
		case reflect.Slice:
			if f.Type().Elem().Kind() == reflect.Struct {
				for i := range f.Len() {
					if err := s.walkEnv(fmt.Sprintf("%s[%d]", key, i), f.Index(i)); err != nil {
						return err
					}
				}
				return nil
			}
			return s.envScalar(key, f)
		case reflect.Map, reflect.Interface:
			return nil // free-form sections are decoded with DecodeSection
		}
		return s.envScalar(key, f)
	})
}

func (s *Source) envScalar(key string, f reflect.Value) error {
	name := s.EnvName(key)
	raw, ok := s.Getenv(name)
	if !ok {
		return nil
	}
	fail := func(why string) error {
		return &Error{File: "(environment)", Key: name, Msg: fmt.Sprintf("%s for %s: %q", why, key, raw)}
	}
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(raw)); err != nil {
			return fail(err.Error())
		}
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fail("expected true or false")
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, f.Type().Bits())
		if err != nil {
			return fail("expected an integer")
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 10, f.Type().Bits())
		if err != nil {
			return fail("expected a non-negative integer")
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(raw, f.Type().Bits())
		if err != nil {
			return fail("expected a number")
		}
		f.SetFloat(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return nil
		}
		var items []string
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		f.Set(reflect.ValueOf(items).Convert(f.Type()))
	}
	return nil
}

// readSecretFiles fills each string field X from the file named by its
// sibling X_file, refusing settings that give both.
func (s *Source) readSecretFiles(prefix string, dst any) error {
	return s.walkSecrets(prefix, reflect.ValueOf(dst).Elem())
}

func (s *Source) walkSecrets(prefix string, v reflect.Value) error {
	byName := map[string]reflect.Value{}
	_ = fields(prefix, v, func(key string, f reflect.Value, _ reflect.StructField) error {
		byName[key] = f
		return nil
	})
	return fields(prefix, v, func(key string, f reflect.Value, _ reflect.StructField) error {
		switch {
		case f.Kind() == reflect.Struct && !f.Addr().Type().Implements(textUnmarshaler):
			return s.walkSecrets(key, f)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			for i := range f.Len() {
				if err := s.walkSecrets(fmt.Sprintf("%s[%d]", key, i), f.Index(i)); err != nil {
					return err
				}
			}
			return nil
		case f.Kind() != reflect.String || !strings.HasSuffix(key, "_file") || f.String() == "":
			return nil
		case s.SkipFile != nil && s.SkipFile(key):
			return nil
		}
		target, ok := byName[strings.TrimSuffix(key, "_file")]
		if !ok || target.Kind() != reflect.String {
			return nil
		}
		if target.String() != "" {
			return s.Errorf(key, "%s and %s are both set; give one", strings.TrimSuffix(key, "_file"), key)
		}
		data, err := os.ReadFile(f.String())
		if err != nil {
			return s.Errorf(key, "cannot read secret file: %v", err)
		}
		target.SetString(strings.TrimRight(string(data), "\r\n"))
		return nil
	})
}
