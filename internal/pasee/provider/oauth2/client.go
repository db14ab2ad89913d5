package oauth2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	xoauth2 "golang.org/x/oauth2"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// ClientOptions are the settings every redirect provider (oauth2, oidc)
// has: Pasee's registration at the provider, and what to keep.
type ClientOptions struct {
	// AppID is the client id the provider gave Pasee; ClientID is a synonym.
	AppID    string `toml:"app_id"`
	ClientID string `toml:"client_id"`
	// AppSecret is the client secret; ClientSecret is a synonym, and either
	// may be read from a file (app_secret_file, client_secret_file).
	AppSecret        string `toml:"app_secret"`
	AppSecretFile    string `toml:"app_secret_file"`
	ClientSecret     string `toml:"client_secret"`
	ClientSecretFile string `toml:"client_secret_file"`
	// Scopes are requested at the provider; each protocol and preset has
	// its default.
	Scopes []string `toml:"scopes"`
	// Claims are the provider's claims kept in Pasee's tokens; nothing else
	// is kept. A dotted name ("data.username") is a path in the user API's
	// answer, kept under its last segment.
	Claims []string `toml:"claims"`
	// AuthStyle is how Pasee authenticates at the token endpoint: "header"
	// (HTTP Basic, client_secret_basic), "params" (in the form,
	// client_secret_post), or "" for the preset's or the discovered one,
	// else HTTP Basic, which RFC 6749 2.3.1 requires every server to
	// support. (Guessing, as golang.org/x/oauth2 can, would spend the code
	// on the first try and hide the provider's real answer.)
	AuthStyle string `toml:"auth_style"`
	// Timeout bounds every call to the provider (default 10 s).
	Timeout settings.Duration `toml:"timeout"`
}

// DefaultTimeout bounds each call to a provider when settings say nothing.
const DefaultTimeout = 10 * time.Second

// SettingError is a wrong value in a provider's settings, naming the key
// (relative to [identity_providers.settings]).
type SettingError struct {
	Key string
	Msg string
}

func (e *SettingError) Error() string { return e.Key + ": " + e.Msg }

func settingErr(key, format string, args ...any) error {
	return &SettingError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Credentials returns the client id and secret, accepting either name of
// each.
func (o ClientOptions) Credentials() (id, secret string, err error) {
	switch {
	case o.AppID != "" && o.ClientID != "" && o.AppID != o.ClientID:
		return "", "", settingErr("client_id", "app_id and client_id are synonyms and differ; give one")
	case o.AppID == "" && o.ClientID == "":
		return "", "", settingErr("app_id", "missing required value: the client id the provider gave Pasee (client_id is accepted too)")
	}
	id = o.AppID
	if id == "" {
		id = o.ClientID
	}
	switch {
	case o.AppSecret != "" && o.ClientSecret != "" && o.AppSecret != o.ClientSecret:
		return "", "", settingErr("client_secret", "app_secret and client_secret are synonyms and differ; give one")
	case o.AppSecret == "" && o.ClientSecret == "":
		return "", "", settingErr("app_secret", "missing required value: the client secret (or app_secret_file, client_secret, client_secret_file)")
	}
	secret = o.AppSecret
	if secret == "" {
		secret = o.ClientSecret
	}
	return id, secret, nil
}

// Style returns the configured token endpoint authentication, or def.
func (o ClientOptions) Style(def xoauth2.AuthStyle) (xoauth2.AuthStyle, error) {
	switch o.AuthStyle {
	case "":
		return def, nil
	case "header":
		return xoauth2.AuthStyleInHeader, nil
	case "params":
		return xoauth2.AuthStyleInParams, nil
	}
	return 0, settingErr("auth_style", "%q is not one of header, params", o.AuthStyle)
}

// HTTPClient returns a client bounded by the configured timeout that does
// not follow redirects (a provider's API answers, it does not send us
// elsewhere).
func (o ClientOptions) HTTPClient() *http.Client {
	return &http.Client{
		Timeout:       o.Timeout.Or(DefaultTimeout),
		Transport:     web.PropagateRequestID(nil), // X-Request-Id: the login's id, for the provider's support
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckURL refuses a provider URL that is not https, except on loopback
// addresses (127.0.0.0/8, ::1, localhost), where tests and development
// providers run. key names the setting in the error.
func CheckURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return settingErr(key, "%q must be an absolute https URL", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return settingErr(key, "%q must not hold credentials or a fragment", raw)
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return settingErr(key, "%q must be https (plain http is accepted only on loopback addresses)", raw)
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// WithClient returns ctx carrying client for golang.org/x/oauth2's requests.
func WithClient(ctx context.Context, client *http.Client) context.Context {
	return context.WithValue(ctx, xoauth2.HTTPClient, client)
}

// AuthCodeOptions are the parameters Pasee adds to every authorization
// request: its callback, the PKCE challenge (S256) and, when given, the
// OIDC nonce.
func AuthCodeOptions(challenge, nonce, callback string) []xoauth2.AuthCodeOption {
	opts := []xoauth2.AuthCodeOption{
		xoauth2.SetAuthURLParam("redirect_uri", callback),
		xoauth2.SetAuthURLParam("code_challenge", challenge),
		xoauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
	if nonce != "" {
		opts = append(opts, xoauth2.SetAuthURLParam("nonce", nonce))
	}
	return opts
}

// Exchange redeems code at conf's token endpoint with the PKCE verifier and
// the same callback as the authorization request, classifying failures:
// the provider unreachable or failing (ErrProviderUnavailable), the code
// refused (ErrProviderRefused, with the provider's reason: expired, used,
// PKCE mismatch), anything else unusable (ErrProviderBadAnswer). Errors
// never carry the code, the verifier or the secret.
func Exchange(ctx context.Context, name string, client *http.Client, conf *xoauth2.Config, code, verifier, callback string) (*xoauth2.Token, error) {
	tok, err := conf.Exchange(WithClient(ctx, client), code,
		xoauth2.VerifierOption(verifier), xoauth2.SetAuthURLParam("redirect_uri", callback))
	if err != nil {
		return nil, exchangeError(name, err)
	}
	return tok, nil
}

func exchangeError(name string, err error) error {
	var re *xoauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		reason := re.ErrorCode
		if reason == "" {
			reason = "status " + strconv.Itoa(status)
		}
		if d := Clip(re.ErrorDescription); d != "" {
			reason += ": " + d
		}
		// GitHub answers 200 with its own codes: bad_verification_code for
		// invalid_grant, incorrect_client_credentials for invalid_client.
		switch {
		case re.ErrorCode == "invalid_grant" || re.ErrorCode == "bad_verification_code":
			return fmt.Errorf("%w: %s refused the authorization code (%s)", pasee.ErrProviderRefused, name, reason)
		case re.ErrorCode == "temporarily_unavailable" || status >= 500:
			return fmt.Errorf("%w: %s's token endpoint failed (%s)", pasee.ErrProviderUnavailable, name, reason)
		case re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" || re.ErrorCode == "incorrect_client_credentials" || status == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s refused Pasee's client credentials (%s): check app_id and app_secret", pasee.ErrProviderBadAnswer, name, reason)
		}
		return fmt.Errorf("%w: %s's token endpoint refused the exchange (%s)", pasee.ErrProviderBadAnswer, name, reason)
	}
	if transportFailure(err) {
		return fmt.Errorf("%w: %s's token endpoint: %v", pasee.ErrProviderUnavailable, name, redact(err))
	}
	// Unparseable answers, an answer without access_token.
	return fmt.Errorf("%w: %s's token endpoint: %v", pasee.ErrProviderBadAnswer, name, err)
}

func transportFailure(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

// redact drops the URL of a transport error (it may carry a query).
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Clip makes a provider's error description fit for a message: printable,
// one line, at most 200 characters.
func Clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return strings.TrimSpace(s)
}

// maxAnswer bounds what is read of a provider's API answer.
const maxAnswer = 1 << 20

// FetchJSON gets a JSON object from a provider's API with an access token.
// Numbers are kept as json.Number, so that large ids stay exact.
func FetchJSON(ctx context.Context, name string, client *http.Client, href, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, href, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", pasee.ErrProviderBadAnswer, name, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pasee") // GitHub's API refuses requests without one
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s's user API: %v", pasee.ErrProviderUnavailable, name, redact(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s's user API: reading the answer: %v", pasee.ErrProviderUnavailable, name, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: %s's user API answered %d", pasee.ErrProviderUnavailable, name, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: %s's user API answered %d to the access token it just issued", pasee.ErrProviderBadAnswer, name, resp.StatusCode)
	case len(body) > maxAnswer:
		return nil, fmt.Errorf("%w: %s's user API answered more than %d bytes", pasee.ErrProviderBadAnswer, name, maxAnswer)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil || out == nil {
		return nil, fmt.Errorf("%w: %s's user API did not answer a JSON object", pasee.ErrProviderBadAnswer, name)
	}
	return out, nil
}

// Lookup finds path in a JSON object: the member named path itself if
// there is one (claim names may hold dots, as in URLs), else the dotted path
// ("data.id").
func Lookup(obj map[string]any, path string) (any, bool) {
	if v, ok := obj[path]; ok {
		return v, v != nil
	}
	var cur any = obj
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// SubjectOf reads the user's stable id at path: a non-empty string or an
// integer (GitHub's ids are JSON numbers).
func SubjectOf(obj map[string]any, path string) (string, error) {
	v, ok := Lookup(obj, path)
	if !ok {
		return "", fmt.Errorf("no %q field", path)
	}
	switch s := v.(type) {
	case string:
		if s == "" {
			return "", fmt.Errorf("empty %q field", path)
		}
		return s, nil
	case json.Number:
		if _, err := strconv.ParseInt(s.String(), 10, 64); err != nil {
			return "", fmt.Errorf("%q is %s, not an integer id", path, s)
		}
		return s.String(), nil
	}
	return "", fmt.Errorf("%q is a %T, not a string or integer id", path, v)
}

// PickClaims keeps the whitelisted claims of obj. A name is looked up as a
// dotted path from the top of obj, then under base (the object holding the
// user's id, "data" for Twitter), and kept under its last segment.
// Registered JWT claim names are never kept: Pasee sets those.
func PickClaims(obj map[string]any, whitelist []string, base string) map[string]any {
	var out map[string]any
	for _, name := range whitelist {
		key := name
		if _, exact := obj[name]; !exact {
			key = name[strings.LastIndexByte(name, '.')+1:]
		}
		if token.IsRegistered(key) {
			continue
		}
		v, ok := Lookup(obj, name)
		if !ok && base != "" {
			v, ok = Lookup(obj, base+"."+name)
		}
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[key] = v
	}
	return out
}
