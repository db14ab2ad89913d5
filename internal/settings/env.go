package settings

import (
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// envState is what the environment did to a Source.
type envState struct {
	consulted map[string]bool // every variable looked up
	sections  []string        // name prefixes of free-form sections, checked when decoded
	applied   []Override
}

// Override is an environment variable that set a settings key.
type Override struct {
	Name  string // PASEE_STORAGE_URL
	Key   string // storage.url
	Value string // masked when the key holds a secret
}

// Overrides lists the environment variables applied so far, in the order
// they were read, with the values of secrets masked: what start-up logs.
func (s *Source) Overrides() []Override { return slices.Clone(s.env.applied) }

// secretWords mark keys whose values are never shown.
var secretWords = []string{"password", "secret", "private_key", "token", "dsn"}

func maskValue(key, value string) string {
	last := key[strings.LastIndexByte(key, '.')+1:]
	if !strings.HasSuffix(last, "_file") {
		for _, w := range secretWords {
			if strings.Contains(last, w) {
				return "****"
			}
		}
	}
	if u, err := url.Parse(value); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return value
}

// unknownEnv refuses the PREFIX_* variables below prefix that override no
// key, as an unknown key in the file is refused. Variables inside a
// free-form section are checked when that section is decoded, and
// PREFIX_TEST_* belong to the test suites.
func (s *Source) unknownEnv(prefix string) error {
	if s.EnvPrefix == "" || s.Environ == nil {
		return nil
	}
	scope := s.EnvPrefix + "_"
	if prefix != "" {
		scope = s.EnvName(prefix) + "_"
	}
	var names []string
	for _, kv := range s.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case !strings.HasPrefix(name, scope), s.env.consulted[name], strings.HasPrefix(name, s.EnvPrefix+"_TEST_"):
			continue
		case slices.ContainsFunc(s.env.sections, func(p string) bool { return len(p) > len(scope) && strings.HasPrefix(name, p) }):
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	errs := make([]error, 0, len(names))
	for _, name := range names {
		errs = append(errs, &Error{File: "(environment)", Key: name, Msg: fmt.Sprintf(
			"unknown variable: it overrides no settings key (check its spelling; %s_TABLE_KEY sets [table] key, with the index of an array of tables already in the file: %s_IDENTITY_PROVIDERS_0_ENDPOINT)",
			s.EnvPrefix, s.EnvPrefix)})
	}
	return errors.Join(errs...)
}

func (s *Source) lookupEnv(name string) (string, bool) {
	if s.env.consulted == nil {
		s.env.consulted = map[string]bool{}
	}
	s.env.consulted[name] = true
	return s.Getenv(name)
}

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
			// Free-form sections are decoded with DecodeSection, which
			// checks their variables.
			s.env.sections = append(s.env.sections, s.EnvName(key)+"_")
			return nil
		}
		return s.envScalar(key, f)
	})
}

func (s *Source) envScalar(key string, f reflect.Value) error {
	name := s.EnvName(key)
	raw, ok := s.lookupEnv(name)
	if !ok {
		return nil
	}
	if !slices.ContainsFunc(s.env.applied, func(o Override) bool { return o.Name == name }) {
		s.env.applied = append(s.env.applied, Override{Name: name, Key: key, Value: maskValue(key, raw)})
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

// LogOverrides logs the environment variables that set keys of src, once,
// values of secrets masked.
func LogOverrides(logger *slog.Logger, src *Source) {
	overrides := src.Overrides()
	if len(overrides) == 0 {
		return
	}
	attrs := make([]any, 0, len(overrides))
	for _, o := range overrides {
		attrs = append(attrs, slog.String(o.Name, o.Value))
	}
	logger.Info("environment overrides applied", slog.Group("env", attrs...))
}
