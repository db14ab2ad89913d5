package app

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/kisee-pasee/suite/pkg/token"
)

// LegacySettings are the top-level keys of the original (Python) Pasee's
// settings file that this Pasee maps onto its own. Pasee starts on such a
// file, warning once per key about what to write instead; `pasee settings
// upgrade` prints the file rewritten.
type LegacySettings struct {
	// Algorithm was the label written in token headers. The algorithm now
	// comes from the key; "ES256" with a secp256k1 key is the original's
	// labelling, [jwt] legacy_es256k = true.
	Algorithm string `toml:"algorithm"`
	// StorageBackend named a Python class and its options; [storage] url
	// says the same.
	StorageBackend *struct {
		Class   string         `toml:"class"`
		Options map[string]any `toml:"options"`
	} `toml:"storage_backend"`
}

// LegacyProvider are the keys of an original [[identity_providers]] entry
// that this Pasee maps or ignores.
type LegacyProvider struct {
	// Implementation named the provider's Python class; protocol says it.
	Implementation string `toml:"implementation"`
	// Title and Description were shown by GET /tokens/, which now
	// describes each provider itself.
	Title       string `toml:"title"`
	Description string `toml:"description"`
	// Capabilities ["register_user"] made the provider receive forwarded
	// registrations: registration = true.
	Capabilities *[]string `toml:"capabilities"`
	// InputFields described the login form (login, password), which is
	// fixed for the kisee and pasee protocols.
	InputFields []struct {
		Name     string `toml:"name"`
		Required bool   `toml:"required"`
	} `toml:"input_fields"`
}

// LegacyKey is one legacy key found in a settings file: where it is, and
// what replaces it.
type LegacyKey struct {
	Key     string // e.g. "identity_providers[0].implementation"
	Line    int
	Instead string // what to write instead, or why it is dropped
	// set are the new keys the upgraded file gets, in dotted form with
	// indexes ("identity_providers[0].protocol").
	set []keyValue
}

type keyValue struct {
	key   string
	value any
}

// Warning is the message logged at start for k.
func (k LegacyKey) Warning(file string) string {
	loc := file
	if k.Line > 0 {
		loc += ":" + strconv.Itoa(k.Line)
	}
	return fmt.Sprintf("%s: %s is a setting of the original Pasee: %s", loc, k.Key, k.Instead)
}

// Python classes of the original Pasee.
const (
	legacyKiseeClass   = "pasee.identity_providers.kisee.KiseeIdentityProvider"
	legacyTwitterClass = "pasee.identity_providers.twitter.TwitterIdentityProvider"
	legacyDemoStorage  = "pasee.storage_backend.demo_backend.sqlite.DemoSqliteStorage"
	legacyPGStorage    = "pasee.storage_backend.pgsql_backend.pgsql.PostgresStorage"
)

// mapLegacy maps the legacy keys that need no signing key onto cfg and
// records them in cfg.Legacy. Keys that never had a meaning stay errors
// (the strict decoding reports them); a legacy value with no equivalent
// is an error naming it.
func (cfg *Config) mapLegacy() error {
	s, src := &cfg.Settings, cfg.Source
	if sb := s.StorageBackend; sb != nil {
		if src.Has("storage.url") {
			return src.Errorf("storage_backend", "the storage is given twice: [storage_backend] (the original's) and [storage] url; keep [storage] url")
		}
		u, err := legacyStorageURL(sb.Class, sb.Options)
		if err != nil {
			return src.Errorf("storage_backend.class", "%v", err)
		}
		s.Storage.URL = u
		instead := fmt.Sprintf("write [storage] url = %q instead", sqlRedacted(u))
		if f, _ := sb.Options["file"].(string); f == ":memory:" {
			instead += " (the original kept nothing across restarts; this keeps a file)"
		}
		cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: "storage_backend", Line: src.Line("storage_backend"),
			Instead: instead + "; import the original's data with `pasee import`", set: []keyValue{{"storage.url", u}}})
	}
	for i := range s.IdentityProviders {
		p := &s.IdentityProviders[i]
		key := fmt.Sprintf("identity_providers[%d]", i)
		if p.Implementation != "" {
			switch p.Implementation {
			case legacyKiseeClass:
				if p.Protocol != "" && p.Protocol != "kisee" {
					return src.Errorf(key+".implementation", "the Kisee class does not go with protocol %q", p.Protocol)
				}
				p.Protocol = "kisee"
				cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: key + ".implementation", Line: src.Line(key + ".implementation"),
					Instead: `write protocol = "kisee" instead`, set: []keyValue{{key + ".protocol", "kisee"}}})
			case legacyTwitterClass:
				return src.Errorf(key+".implementation", `Twitter's OAuth 1 login is gone: configure protocol = "oauth2" with preset = "twitter" and the app_id and app_secret of an OAuth 2.0 client (docs/migrating.md)`)
			default:
				return src.Errorf(key+".implementation", "the Python class %q has no equivalent here; set protocol to kisee, pasee, oauth2 or oidc", p.Implementation)
			}
		}
		for _, k := range []struct {
			name string
			set  bool
		}{{"title", p.Title != ""}, {"description", p.Description != ""}} {
			if k.set || src.Has(key+"."+k.name) {
				cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: key + "." + k.name, Line: src.Line(key + "." + k.name),
					Instead: "remove it: GET /tokens/ describes each provider from its protocol"})
			}
		}
		if p.Capabilities != nil {
			register := false
			for _, c := range *p.Capabilities {
				if c != "register_user" {
					return src.Errorf(key+".capabilities", "unknown capability %q (the original knew only register_user)", c)
				}
				register = true
			}
			instead := "remove it (no capability: registration stays off)"
			var set []keyValue
			if register {
				if src.Has(key+".registration") && !p.Registration {
					return src.Errorf(key+".capabilities", `["register_user"] contradicts registration = false; keep registration`)
				}
				p.Registration = true
				instead = "write registration = true instead"
				set = []keyValue{{key + ".registration", true}}
			}
			cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: key + ".capabilities", Line: src.Line(key + ".capabilities"), Instead: instead, set: set})
		}
		if p.InputFields != nil {
			cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: key + ".input_fields", Line: src.Line(key + ".input_fields[0]"),
				Instead: "remove it: the login form (login, password) is fixed, and GET /tokens/ describes it"})
		}
	}
	return nil
}

// mapLegacyAlgorithm maps the top-level algorithm once the signing key is
// known.
func (cfg *Config) mapLegacyAlgorithm() error {
	alg := cfg.Algorithm
	if alg == "" {
		return nil
	}
	src := cfg.Source
	keyAlg := cfg.Keys.Current.Algorithm()
	switch {
	case strings.EqualFold(alg, "ES256") && keyAlg == token.ES256K:
		if src.Has("jwt.legacy_es256k") && !cfg.JWT.LegacyES256K {
			return src.Errorf("algorithm", `"ES256" with a secp256k1 key is the original's labelling, which [jwt] legacy_es256k = false refuses; remove algorithm`)
		}
		cfg.JWT.LegacyES256K = true
		cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: "algorithm", Line: src.Line("algorithm"),
			Instead: "write [jwt] legacy_es256k = true instead (secp256k1 tokens labelled ES256, signed and accepted from every provider)",
			set:     []keyValue{{"jwt.legacy_es256k", true}}})
	case strings.EqualFold(alg, string(keyAlg)):
		cfg.Legacy = append(cfg.Legacy, LegacyKey{Key: "algorithm", Line: src.Line("algorithm"),
			Instead: "remove it: the algorithm comes from the key (" + string(keyAlg) + ")"})
	default:
		return src.Errorf("algorithm", "%q does not match the key, which signs %s; remove algorithm (it comes from the key)", alg, keyAlg)
	}
	return nil
}

// legacyStorageURL is the [storage] url of an original storage_backend.
func legacyStorageURL(class string, o map[string]any) (string, error) {
	str := func(k string) string {
		switch v := o[k].(type) {
		case string:
			return v
		case int64:
			return strconv.FormatInt(v, 10)
		}
		return ""
	}
	switch class {
	case legacyDemoStorage:
		f := str("file")
		if f == "" || f == ":memory:" {
			return "sqlite:pasee.db", nil
		}
		return "sqlite:" + f, nil
	case legacyPGStorage:
		u := &url.URL{Scheme: "postgres", Host: str("host"), Path: "/" + str("database")}
		if u.Host == "" {
			u.Host = "localhost"
		}
		if port := str("port"); port != "" {
			u.Host = net.JoinHostPort(u.Host, port)
		}
		switch user, pw := str("user"), str("password"); {
		case user != "" && pw != "":
			u.User = url.UserPassword(user, pw)
		case user != "":
			u.User = url.User(user)
		}
		return u.String(), nil
	case "":
		return "", fmt.Errorf("missing class: set [storage] url instead")
	}
	return "", fmt.Errorf("the Python class %q has no equivalent here; set [storage] url = \"sqlite:FILE\" or \"postgres://USER@HOST/DB\"", class)
}

// sqlRedacted hides a password in a storage URL for warnings.
func sqlRedacted(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
		return strings.Replace(p.String(), "xxxxx", "PASSWORD", 1)
	}
	return u
}
