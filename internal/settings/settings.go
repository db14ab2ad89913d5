// Package settings loads the TOML settings files of Kisee and Pasee.
//
// Loading is strict: an unknown key, a value of the wrong type or a missing
// required value stops start-up with an error naming the file, the key and
// its line. Environment variables override values (PASEE_STORAGE_URL sets
// [storage] url), and a secret may be given as a path in the sibling key
// whose name ends in "_file" (app_secret_file for app_secret).
package settings

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is a settings error, located in its file.
type Error struct {
	File string // the settings file, or "(defaults)" / "(environment)"
	Line int    // 1-based line of the key, or of its table; 0 when unknown
	Key  string // dotted key, with indexes for arrays of tables: identity_providers[1].name
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Source is a parsed settings document: its text, where each key is, and
// the environment that overrides it.
type Source struct {
	File      string
	EnvPrefix string // e.g. "PASEE"; empty disables environment overrides
	Getenv    func(string) (string, bool)
	// SkipFile, when set, names the "_file" keys whose file is not read
	// (commands that never sign skip the signing key's).
	SkipFile func(key string) bool
	// Environ lists the environment, to find variables that override
	// nothing (default os.Environ).
	Environ func() []string
	data    []byte
	lines   map[string]int
	kinds   map[string]valueKind // key → kind of its value, for type errors
	env     envState
}

// DefaultsName is the File of a Source with no settings file.
const DefaultsName = "(defaults)"

// Read parses the settings file at path.
func Read(path, envPrefix string) (*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	return Parse(path, data, envPrefix)
}

// Parse parses data, the content of the settings file named name.
func Parse(name string, data []byte, envPrefix string) (*Source, error) {
	s := &Source{File: name, EnvPrefix: envPrefix, Getenv: os.LookupEnv, Environ: os.Environ, data: data}
	var err error
	if s.lines, s.kinds, err = scan(name, data); err != nil {
		return nil, err
	}
	return s, nil
}

// Open reads the settings file at path, or returns Defaults when path is
// empty (a service started without settings).
func Open(path, envPrefix string) (*Source, error) {
	if path == "" {
		return Defaults(envPrefix), nil
	}
	return Read(path, envPrefix)
}

// OpenWithoutKeys is Open for commands that never sign (healthcheck,
// migrate, the administration commands): the signing key's file, which
// such commands may not be allowed to read, is not read.
func OpenWithoutKeys(path, envPrefix string) (*Source, error) {
	src, err := Open(path, envPrefix)
	if err != nil {
		return nil, err
	}
	src.SkipFile = func(key string) bool { return strings.HasSuffix(key, "private_key_file") }
	return src, nil
}

// Defaults returns a Source with no file: only the environment applies.
func Defaults(envPrefix string) *Source {
	return &Source{File: DefaultsName, EnvPrefix: envPrefix, Getenv: os.LookupEnv, Environ: os.Environ, lines: map[string]int{}, kinds: map[string]valueKind{}}
}

// scan records the line of every key and table header and the kind of
// every value, and reports TOML syntax errors with their line; file names
// them.
func scan(file string, data []byte) (map[string]int, map[string]valueKind, error) {
	s := &Source{lines: map[string]int{}, kinds: map[string]valueKind{}}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	arrays := map[string]int{} // array-of-tables path → count so far
	for p.NextExpression() {
		e := p.Expression()
		var parts []string
		line := 0
		it := e.Key()
		for it.Next() {
			n := it.Node()
			if line == 0 {
				line = p.Shape(n.Raw).Start.Line
			}
			parts = append(parts, string(n.Data))
		}
		switch e.Kind {
		case unstable.Table:
			table = s.resolve(parts, arrays)
			s.setLine(strings.Join(table, "."), line)
		case unstable.ArrayTable:
			base := s.resolve(parts[:len(parts)-1], arrays)
			name := strings.Join(append(base, parts[len(parts)-1]), ".")
			idx := arrays[name]
			arrays[name] = idx + 1
			table = append(base, fmt.Sprintf("%s[%d]", parts[len(parts)-1], idx))
			s.setLine(strings.Join(table, "."), line)
		case unstable.KeyValue:
			for i := range parts {
				s.setLine(strings.Join(append(append([]string{}, table...), parts[:i+1]...), "."), line)
			}
			s.kinds[strings.Join(append(append([]string{}, table...), parts...), ".")] = kindOf(e.Value())
		}
	}
	if err := p.Error(); err != nil {
		var perr *unstable.ParserError
		line := 0
		msg := err.Error()
		if errors.As(err, &perr) {
			msg = perr.Message
			if len(perr.Highlight) > 0 {
				line = p.Shape(p.Range(perr.Highlight)).Start.Line
			}
		}
		return nil, nil, &Error{File: file, Line: line, Msg: "invalid TOML: " + msg}
	}
	return s.lines, s.kinds, nil
}

// resolve turns a table path into its indexed form: in
// [[identity_providers]] ... [identity_providers.settings], the second
// header refers to the last provider.
func (s *Source) resolve(parts []string, arrays map[string]int) []string {
	out := make([]string, 0, len(parts))
	for _, part := range parts {
		plain := strings.Join(append(stripIndexes(out), part), ".")
		if n, ok := arrays[plain]; ok {
			out = append(out, fmt.Sprintf("%s[%d]", part, n-1))
		} else {
			out = append(out, part)
		}
	}
	return out
}

func stripIndexes(path []string) []string {
	out := make([]string, len(path))
	for i, p := range path {
		if j := strings.IndexByte(p, '['); j >= 0 {
			p = p[:j]
		}
		out[i] = p
	}
	return out
}

func (s *Source) setLine(key string, line int) {
	if _, ok := s.lines[key]; !ok {
		s.lines[key] = line
	}
}

// Line returns the line of key in the file, or of the nearest enclosing
// table that is written in the file; 0 if none is.
func (s *Source) Line(key string) int {
	for key != "" {
		if l, ok := s.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

// Has reports whether key is written in the file.
func (s *Source) Has(key string) bool {
	_, ok := s.lines[key]
	return ok
}

// Errorf returns an *Error about key, located at its line (or its table's).
func (s *Source) Errorf(key, format string, args ...any) error {
	return &Error{File: s.File, Line: s.Line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Missing returns the error for a required key that has no value.
func (s *Source) Missing(key string) error {
	return s.Errorf(key, "missing required value (set it in the file or in %s)", s.EnvName(key))
}

// EnvName is the environment variable that overrides key:
// "jwt.access_ttl" → PASEE_JWT_ACCESS_TTL.
func (s *Source) EnvName(key string) string {
	r := strings.NewReplacer(".", "_", "[", "_", "]", "")
	return s.EnvPrefix + "_" + strings.ToUpper(r.Replace(key))
}

// Decode decodes the whole document into dst, a pointer to a struct whose
// fields carry `toml` tags, then applies environment overrides and reads
// "_file" secrets.
func (s *Source) Decode(dst any) error {
	if len(s.data) > 0 {
		if err := s.checkTypes("", s.kinds, dst); err != nil {
			return err
		}
		if err := s.decodeTOML(s.data, "", dst); err != nil {
			return err
		}
	}
	if err := s.finish("", dst); err != nil {
		return err
	}
	return s.unknownEnv("")
}

// DecodeSection decodes raw, the sub-table at key captured as a map (a
// backend's or provider's options, whose shape depends on another value),
// strictly into dst, then applies the environment and "_file" secrets
// below key.
func (s *Source) DecodeSection(key string, raw map[string]any, dst any) error {
	if len(raw) > 0 {
		data, err := toml.Marshal(raw)
		if err != nil {
			return s.Errorf(key, "cannot re-read section: %v", err)
		}
		_, kinds, err := scan(s.File, data)
		if err != nil {
			return s.Errorf(key, "cannot re-read section: %v", err)
		}
		if err := s.checkTypes(key, kinds, dst); err != nil {
			return err
		}
		if err := s.decodeTOML(data, key, dst); err != nil {
			return err
		}
	}
	if err := s.finish(key, dst); err != nil {
		return err
	}
	return s.unknownEnv(key)
}

func (s *Source) decodeTOML(data []byte, prefix string, dst any) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			key := join(prefix, s.keyAt(e, prefix, data))
			errs = append(errs, &Error{File: s.File, Line: s.lineOf(e, prefix, key), Key: key, Msg: "unknown key"})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		key := join(prefix, s.keyAt(de, prefix, data))
		return &Error{File: s.File, Line: s.lineOf(de, prefix, key), Key: key, Msg: plainDecodeError(de)}
	}
	return &Error{File: s.File, Line: 0, Key: prefix, Msg: err.Error()}
}

// keyAt returns the indexed key of a go-toml error: go-toml reports
// "identity_providers.name", the line tells which provider it is.
func (s *Source) keyAt(e *toml.DecodeError, prefix string, data []byte) string {
	parts := []string(e.Key())
	if prefix != "" { // a re-marshalled section: its lines are not the file's
		return strings.Join(parts, ".")
	}
	row, _ := e.Position()
	best := strings.Join(parts, ".")
	for key, line := range s.lines {
		if line == row && strings.Join(stripIndexes(strings.Split(key, ".")), ".") == best {
			return key
		}
	}
	return best
}

func (s *Source) lineOf(e *toml.DecodeError, prefix, key string) int {
	if prefix == "" {
		row, _ := e.Position()
		return row
	}
	return s.Line(key)
}

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	}
	return prefix + "." + key
}

// finish applies environment overrides and "_file" secrets below prefix.
func (s *Source) finish(prefix string, dst any) error {
	if err := s.applyEnv(prefix, dst); err != nil {
		return err
	}
	return s.readSecretFiles(prefix, dst)
}

// Foreign adds to err, a decoding error, that the file seems to be the
// other service's when it has one of markers (keys only that service
// has): Kisee started on `kisee quickstart`'s settings.toml meant for
// Pasee, or the reverse, otherwise only says "unknown key".
func (s *Source) Foreign(err error, other string, markers ...string) error {
	if err == nil || s.File == DefaultsName {
		return err
	}
	for _, m := range markers {
		if s.Has(m) {
			return errors.Join(fmt.Errorf("%s looks like a %s settings file (it has %s, which is %s's); give this service its own file with --settings", s.File, other, m, other), err)
		}
	}
	return err
}

// InsecureURL reports whether raw is a plain-http URL on a host other than
// a loopback address: passwords or keys fetched through it cross the
// network in clear.
func InsecureURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// CheckHTTPS refuses the plain-http URL raw at key, on a host other than a
// loopback address, unless allowed (the allow_insecure_http key allowKey);
// an allowed one returns the warning to log at start.
func (s *Source) CheckHTTPS(key, raw string, allowed bool, allowKey string) (warning string, err error) {
	if !InsecureURL(raw) {
		return "", nil
	}
	if !allowed {
		return "", s.Errorf(key, "%q is plain http on a host that is not loopback: passwords and keys would cross the network in clear; use https, or set %s = true to accept it", raw, allowKey)
	}
	return fmt.Sprintf("%s %q is plain http (%s = true): passwords and keys cross the network in clear", key, raw, allowKey), nil
}

// OptionError locates err, returned by a backend or provider built from
// the section at key, at the option it names: "ldap: ca_cert_file: ..."
// becomes an error at key.ca_cert_file, on that option's line. opts is the
// section's options struct; errors naming none of its keys stay at key.
func (s *Source) OptionError(key string, opts any, err error) error {
	msg := err.Error()
	rest := msg
	if i := strings.Index(rest, ": "); i >= 0 && !strings.ContainsAny(rest[:i], " _") {
		rest = rest[i+2:] // a package prefix such as "ldap: "
	}
	word := rest
	if i := strings.IndexAny(word, " :[%\""); i >= 0 {
		word = word[:i]
	}
	t := reflect.TypeOf(opts)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if word != "" && t.Kind() == reflect.Struct {
		if _, ok := fieldByTag(t, word); ok {
			return s.Errorf(join(key, word), "%s", rest)
		}
	}
	return s.Errorf(key, "%s", msg)
}
