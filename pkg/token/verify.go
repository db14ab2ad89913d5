package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reasons a token is refused. Verify wraps one of them with a detail, so
// callers can tell them apart with errors.Is and still show the detail.
var (
	ErrMalformed   = errors.New("malformed token")
	ErrAlgorithm   = errors.New("algorithm not accepted")
	ErrHeader      = errors.New("header not accepted")
	ErrType        = errors.New("wrong token type")
	ErrUnknownKey  = errors.New("no key to verify the token")
	ErrSignature   = errors.New("invalid signature")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
	ErrIssuer      = errors.New("wrong issuer")
	ErrAudience    = errors.New("wrong audience")
)

// DefaultMaxTokenSize bounds the length of a token a Verifier reads.
const DefaultMaxTokenSize = 16 << 10

// Verifier checks tokens: signature by one of a key set's keys with the
// key's own algorithm, header type, expiry, not-before, issuer and
// audience. It is safe for concurrent use.
type Verifier struct {
	keys     KeySet
	issuer   string
	audience string
	types    []string
	leeway   time.Duration
	legacy   bool
	now      func() time.Time
	maxSize  int
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithIssuer requires the "iss" claim to equal iss.
func WithIssuer(iss string) VerifierOption { return func(v *Verifier) { v.issuer = iss } }

// WithAudience requires aud among the "aud" claim's values.
func WithAudience(aud string) VerifierOption { return func(v *Verifier) { v.audience = aud } }

// WithTypes sets the accepted "typ" header values (compared without case
// and without an "application/" prefix). The default accepts only "JWT".
func WithTypes(types ...string) VerifierOption {
	return func(v *Verifier) {
		v.types = v.types[:0]
		for _, t := range types {
			v.types = append(v.types, normalizeType(t))
		}
	}
}

// WithLeeway tolerates clock skew of d on exp, nbf and iat. Default 30 s.
func WithLeeway(d time.Duration) VerifierOption { return func(v *Verifier) { v.leeway = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// AcceptLegacyES256K accepts "ES256" in the header of a token signed by a
// secp256k1 key, as the original Python services wrote it.
func AcceptLegacyES256K(enabled bool) VerifierOption { return func(v *Verifier) { v.legacy = enabled } }

// WithMaxSize refuses tokens longer than n bytes.
func WithMaxSize(n int) VerifierOption { return func(v *Verifier) { v.maxSize = n } }

// NewVerifier returns a Verifier trying the keys of keys.
func NewVerifier(keys KeySet, opts ...VerifierOption) *Verifier {
	v := &Verifier{keys: keys, types: []string{"jwt"}, leeway: 30 * time.Second, now: time.Now, maxSize: DefaultMaxTokenSize}
	for _, o := range opts {
		o(v)
	}
	return v
}

func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

// fullHeader is what a verifier reads of a token header: what it needs, and
// what it must refuse to follow.
type fullHeader struct {
	Alg  string          `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	Jwk  json.RawMessage `json:"jwk"`
	X5c  json.RawMessage `json:"x5c"`
	B64  json.RawMessage `json:"b64"`
	Enc  json.RawMessage `json:"enc"`
}

// forbidden names the first header parameter the suite never follows, or "".
func (h *fullHeader) forbidden() string {
	switch {
	case h.Crit != nil:
		return "crit"
	case h.Jku != nil:
		return "jku"
	case h.X5u != nil:
		return "x5u"
	case h.Jwk != nil:
		return "jwk"
	case h.X5c != nil:
		return "x5c"
	case h.B64 != nil:
		return "b64"
	case h.Enc != nil:
		return "enc"
	}
	return ""
}

// Verify checks token and returns its claims. The error wraps one of the
// Err* reasons above (or ErrKeySetUnavailable) with a detail fit for a client.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > v.maxSize {
		return nil, fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, v.maxSize)
	}
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first < 0 || first == last || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: expected three dot-separated parts", ErrMalformed)
	}
	// One copy of the token and one buffer for its three decoded parts:
	// this runs on every request a downstream service receives.
	raw := []byte(token)
	buf := make([]byte, b64.DecodedLen(len(raw)))
	n, err := b64.Decode(buf, raw[:first])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url", ErrMalformed)
	}
	rawHeader, buf := buf[:n:n], buf[n:]
	var h fullHeader
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	alg, err := ParseAlgorithm(h.Alg)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	if name := h.forbidden(); name != "" {
		return nil, fmt.Errorf("%w: header parameter %q is not accepted", ErrHeader, name)
	}
	typ := ""
	if h.Typ != nil {
		typ = normalizeType(*h.Typ)
	}
	if !v.acceptsType(typ) {
		return nil, fmt.Errorf("%w: %q where %s is expected", ErrType, typ, strings.Join(v.types, " or "))
	}
	n, err = b64.Decode(buf, raw[last+1:])
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	sig, buf := buf[:n:n], buf[n:]
	candidates, err := v.keys.Candidates(ctx, h.Kid)
	if err != nil {
		if errors.Is(err, ErrKeySetUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrUnknownKey, err)
	}
	input := raw[:last]
	compatible := false
	verified := false
	for _, k := range candidates {
		if k.alg != alg && !(v.legacy && k.alg == ES256K && alg == ES256) {
			continue
		}
		compatible = true
		if verifySignature(k, input, sig) == nil {
			verified = true
			break
		}
	}
	switch {
	case !compatible:
		return nil, fmt.Errorf("%w: header algorithm %s does not match the issuer's key", ErrAlgorithm, alg)
	case !verified:
		return nil, fmt.Errorf("%w: the signature does not match any of the issuer's keys", ErrSignature)
	}
	n, err = b64.Decode(buf, raw[first+1:last])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	payload := buf[:n]
	var c Claims
	if err := c.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if err := v.checkClaims(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (v *Verifier) acceptsType(typ string) bool {
	for _, t := range v.types {
		if t == typ {
			return true
		}
	}
	return false
}

func (v *Verifier) checkClaims(c *Claims) error {
	now := v.now()
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: no \"exp\" claim", ErrMalformed)
	}
	if now.After(c.ExpiresAt.Add(v.leeway)) {
		return fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(v.leeway).Before(c.NotBefore) {
		return fmt.Errorf("%w before %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && now.Add(v.leeway).Before(c.IssuedAt) {
		return fmt.Errorf("%w: issued in the future (%s)", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	if v.issuer != "" && c.Issuer != v.issuer {
		return fmt.Errorf("%w: %q", ErrIssuer, c.Issuer)
	}
	if v.audience != "" {
		found := false
		for _, a := range c.Audience {
			if a == v.audience {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%w: token is not for %q", ErrAudience, v.audience)
		}
	}
	return nil
}
