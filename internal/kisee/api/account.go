package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// registerAccountRoutes adds registration, password recovery and password
// change. Recovery answers at /password_recoveries/, its alias
// /forgotten-passwords/, and the original Kisee's spelling (compat).
func (h *Handler) registerAccountRoutes(s *web.Server) {
	s.Route(http.MethodGet, "/users/", h.describeUsers)
	s.Route(http.MethodPost, "/users/", h.registerUser)
	s.Route(http.MethodPatch, "/users/:username/", h.patchUser)
	for _, p := range []string{"/password_recoveries/", "/forgotten-passwords/", "/forgotten_passwords/"} {
		s.Route(http.MethodGet, p, h.describeRecovery)
		s.Route(http.MethodPost, p, h.requestRecovery)
	}
}

// link is a coreapi link, the shape the original Kisee described its
// actions with (compat: clients read "recover"."url").
type link struct {
	Type        string  `json:"_type"`
	URL         string  `json:"url"`
	Action      string  `json:"action"`
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description"`
	Fields      []field `json:"fields"`
}

type field struct {
	Name     string `json:"name"`
	Required bool   `json:"required,omitempty"`
	Schema   schema `json:"schema"`
}

// schema is the JSON Schema of a field (its members in the order the
// documents have always had them).
type schema struct {
	Description string `json:"description,omitempty"`
	Format      string `json:"format,omitempty"`
	MaxLength   int    `json:"maxLength,omitempty"`
	MinLength   int    `json:"minLength,omitempty"`
	Pattern     string `json:"pattern,omitempty"`
	Type        string `json:"type"`
}

// document is the coreapi document GET /users/ and GET
// /password_recoveries/ answer: whether the feature is enabled and the
// links of what can be done.
type document struct {
	Meta          documentMeta `json:"_meta"`
	Type          string       `json:"_type"`
	Enabled       bool         `json:"enabled"`
	ExpiresAt     string       `json:"expires_at,omitempty"`
	Recover       *link        `json:"recover,omitempty"`
	RegisterUser  *link        `json:"register_user,omitempty"`
	ResetPassword *link        `json:"reset_password,omitempty"`
	Username      string       `json:"username,omitempty"`
}

type documentMeta struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

func newLink(href, action, title, description string, fields ...field) *link {
	return &link{Type: "link", URL: href, Action: action, Title: title, Description: description, Fields: fields}
}

func (h *Handler) document(path, title string) document {
	return document{Type: "document", Meta: documentMeta{URL: h.url(path), Title: title}}
}

func passwordSchema() schema {
	return schema{Type: "string", MinLength: kisee.MinPasswordLength, MaxLength: kisee.MaxPasswordBytes, Format: "password"}
}

func (h *Handler) describeUsers(c echo.Context) error {
	doc := h.document("/users/", "Users")
	doc.Enabled = h.svc.RegistrationOpen() == nil
	doc.RegisterUser = newLink(h.url("/users/"), "post", "Register a new user",
		`POST {"username", "email", "password"} creates a user, when self-registration is enabled.`,
		field{Name: "username", Required: true, Schema: schema{Type: "string", MinLength: 1, MaxLength: kisee.MaxNewUsernameLength, Pattern: `^[A-Za-z0-9._@+-]+$`}},
		field{Name: "email", Required: true, Schema: schema{Type: "string", Format: "email"}},
		field{Name: "password", Required: true, Schema: passwordSchema()},
	)
	return c.JSON(http.StatusOK, doc)
}

// newUser is the body of POST /users/. A missing member is empty, which
// the service refuses with the member's name.
type newUser struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (h *Handler) registerUser(c echo.Context) error {
	if err := h.svc.RegistrationOpen(); err != nil {
		return accountProblem(err)
	}
	var body newUser
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	ctx := kisee.WithClientAddr(c.Request().Context(), c.RealIP())
	u, err := h.svc.Register(ctx, kisee.NewUser{
		Username: body.Username, Email: body.Email, Password: body.Password,
	})
	if err != nil {
		return accountProblem(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/users/"+url.PathEscape(u.Username)+"/")
	return c.JSON(http.StatusCreated, map[string]string{"username": u.Username, "email": u.Email})
}

// accountProblem maps an error of registration or password change to its
// answer.
func accountProblem(err error) error {
	var ve *kisee.ValidationError
	var locked *kisee.LockedError
	switch {
	case errors.As(err, &locked):
		return web.TooManyRequests("Too many registrations from this address; retry later.", locked.RetryAfter)
	case errors.As(err, &ve):
		title := "Invalid request"
		switch {
		case errors.Is(ve, kisee.ErrMissingField):
			title = "Missing required fields"
		case errors.Is(ve, kisee.ErrInvalidUsername):
			title = "Invalid username"
		case errors.Is(ve, kisee.ErrInvalidEmail):
			title = "Invalid email"
		case errors.Is(ve, kisee.ErrWeakPassword):
			title = "Weak password"
		}
		return web.BadRequest(title, sentence(ve.Detail))
	case errors.Is(err, kisee.ErrUserExists):
		return web.NewProblem(http.StatusConflict, "User already exists", "A user with this username or this email address already exists.")
	case errors.Is(err, kisee.ErrRegistrationDisabled):
		return web.Forbidden("Registration disabled", "Self-registration is turned off on this server.")
	case errors.Is(err, kisee.ErrCannotRegister):
		return web.Forbidden("Registration disabled", "This server's identity backend cannot create users.")
	case errors.Is(err, kisee.ErrCannotSetPassword):
		return passwordChangeUnsupported()
	case errors.Is(err, kisee.ErrWrongUser):
		return web.Forbidden("Token does not apply to user resource", "These credentials are another user's: a password can only be changed by its owner.")
	case errors.Is(err, kisee.ErrResetTokenUsed):
		return web.Unauthorized("Token already used", "This password-reset token was used already; each works once. Ask for a new one.")
	case errors.Is(err, kisee.ErrUserNotFound):
		return web.NotFound("User not found", "No such user.")
	case errors.Is(err, kisee.ErrUnavailable):
		return web.ServiceUnavailable("Identity backend unavailable", "Users cannot be changed right now; retry shortly.").WithCause(err)
	}
	return err
}

func passwordChangeUnsupported() *web.Problem {
	return web.Forbidden("Password change not supported", "This server's identity backend cannot change passwords.")
}

// sentence capitalizes d and ends it with a period.
func sentence(d string) string {
	if d == "" {
		return d
	}
	r := []rune(d)
	r[0] = unicode.ToUpper(r[0])
	d = string(r)
	if !strings.HasSuffix(d, ".") {
		d += "."
	}
	return d
}

// recoveryRequest is the body of POST /password_recoveries/.
type recoveryRequest struct {
	Email    string `json:"email"`
	Username string `json:"username"`
	Login    string `json:"login"` // compat
}

// requestRecovery starts a password recovery. Its answer, and the work
// done before it, are the same whether or not the user exists: the body
// is decoded and the request handed to the background queue, nothing
// else (see kisee.Service.RequestPasswordReset).
func (h *Handler) requestRecovery(c echo.Context) error {
	if !h.svc.RecoveryEnabled() {
		return recoveryDisabled()
	}
	var body recoveryRequest
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	err := h.svc.RequestPasswordReset(kisee.ResetRequest{Username: body.Username, Email: body.Email, Login: body.Login})
	var ve *kisee.ValidationError
	switch {
	case errors.As(err, &ve):
		return web.BadRequest("Missing required fields email or username", `Send {"email": "..."} or {"username": "..."} ("login" is accepted too).`)
	case errors.Is(err, kisee.ErrRecoveryDisabled):
		return recoveryDisabled()
	case err != nil:
		return err
	}
	return c.NoContent(http.StatusCreated)
}

func recoveryDisabled() *web.Problem {
	return web.Forbidden("Password recovery disabled", "This server does not send password-recovery email (no [email] settings, or a backend that cannot change passwords).")
}

// describeRecovery describes the POST; with a valid reset token (Bearer,
// or ?token= as the default email link has it) it links to the PATCH that
// sets the new password.
func (h *Handler) describeRecovery(c echo.Context) error {
	doc := h.document("/password_recoveries/", "Forgotten password management")
	doc.Enabled = h.svc.RecoveryEnabled()
	raw, _ := web.BearerToken(c)
	if raw == "" {
		raw = c.QueryParam("token")
	}
	if raw != "" {
		g, err := h.svc.AuthenticateReset(c.Request().Context(), raw)
		switch {
		case err == nil:
			doc.Recover = newLink(h.url("/users/"+url.PathEscape(g.Username)+"/"), "patch", "Change password",
				`Send a JSON Patch [{"op": "replace", "path": "/password", "value": "<new password>"}] with this token as "Authorization: Bearer <token>". The token works once.`,
				field{Name: "password", Required: true, Schema: passwordSchema()})
			doc.Username = g.Username
			doc.ExpiresAt = g.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")
			return c.JSON(http.StatusOK, doc)
		case errors.Is(err, token.ErrType), errors.Is(err, kisee.ErrIdentityToken):
			// Another kind of token (a front-end sending its identity
			// token everywhere): describe the POST.
		default:
			return resetTokenProblem(err)
		}
	}
	doc.ResetPassword = newLink(h.url("/password_recoveries/"), "post", "Reset a forgotten password",
		"POST one of these fields to receive, if the account exists, an email with a link to choose a new password. The answer is 201 whether or not it exists.",
		field{Name: "username", Schema: schema{Type: "string"}},
		field{Name: "email", Schema: schema{Type: "string", Format: "email"}},
		field{Name: "login", Schema: schema{Type: "string", Description: "a username, or an email address"}},
	)
	return c.JSON(http.StatusOK, doc)
}

// resetTokenProblem maps a refused reset token to its answer.
func resetTokenProblem(err error) error {
	switch {
	case errors.Is(err, kisee.ErrIdentityToken):
		return web.Forbidden("Use a password lost token or basic auth",
			"An identity token does not prove that its bearer knows the password: send a password-reset token (POST /password_recoveries/) or Basic credentials.")
	case errors.Is(err, kisee.ErrRevoked):
		return web.Unauthorized("Token revoked", "This password-reset token is no longer valid: the password was changed since. Ask for a new one.")
	}
	return tokenProblem(err)
}

// patchUser changes a password (RFC 6902 JSON Patch: one "replace" of
// /password), authorized by the user's own Basic credentials or by a
// password-reset token for that user.
func (h *Handler) patchUser(c echo.Context) error {
	if !h.svc.CanSetPasswords() {
		return passwordChangeUnsupported()
	}
	ctx := c.Request().Context()
	// Echo gives the parameter escaped only when it routed on URL.RawPath;
	// otherwise net/http has unescaped it already, and unescaping again
	// would read a literal "%41" as "A" (a double-encoded traversal).
	username := c.Param("username")
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(username); err == nil {
			username = u
		}
	}
	var apply func(password string) error
	if user, pass, ok := basicAuth(c.Request().Header.Get(echo.HeaderAuthorization)); ok {
		u, err := h.svc.Identify(ctx, user, pass, c.RealIP())
		if err != nil {
			if errors.Is(err, kisee.ErrInvalidCredentials) {
				return web.NewProblem(http.StatusUnauthorized, "Failed identification", "Wrong username or password.").
					WithHeader("WWW-Authenticate", `Basic realm="kisee", charset="UTF-8"`)
			}
			return identifyProblem(err)
		}
		if u.Username != username {
			return accountProblem(kisee.ErrWrongUser)
		}
		apply = func(pw string) error { return h.svc.ChangePassword(ctx, u, username, pw) }
	} else {
		raw, err := web.BearerToken(c)
		if err != nil {
			var p *web.Problem
			if errors.As(err, &p) {
				p.Detail = `Send a password-reset token ("Authorization: Bearer <token>") or your current credentials ("Authorization: Basic ...").`
				p.WithHeader("WWW-Authenticate", `Basic realm="kisee", charset="UTF-8"`)
			}
			return err
		}
		g, err := h.svc.AuthenticateReset(ctx, raw)
		if err != nil {
			return resetTokenProblem(err)
		}
		if g.Username != username {
			return web.Forbidden("Token does not apply to user resource", "This password-reset token is for another user.")
		}
		apply = func(pw string) error { return h.svc.ResetPassword(ctx, g, username, pw) }
	}
	pw, err := decodePasswordPatch(c)
	if err != nil {
		return err
	}
	if err := apply(pw); err != nil {
		return accountProblem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// patchOp is one operation of an RFC 6902 JSON Patch.
type patchOp struct {
	Op    *string         `json:"op"`
	Path  *string         `json:"path"`
	Value json.RawMessage `json:"value"`
}

const patchExample = `[{"op": "replace", "path": "/password", "value": "<new password>"}]`

// decodePasswordPatch reads the body: exactly one "replace" of /password
// with a string value (compat). It returns the new password.
func decodePasswordPatch(c echo.Context) (string, error) {
	var raw json.RawMessage
	if err := web.DecodeJSON(c, &raw); err != nil {
		return "", err
	}
	var ops []patchOp
	if err := json.Unmarshal(raw, &ops); err != nil {
		return "", web.BadRequest("Invalid JSON patch", "The body must be a JSON Patch (RFC 6902), an array of operations: "+patchExample+".")
	}
	switch {
	case len(ops) == 0:
		return "", web.BadRequest("Invalid JSON patch", "The patch holds no operation; send "+patchExample+".")
	case len(ops) > 1:
		return "", web.BadRequest("Only password can be patched", "Send exactly one operation, the replacement of /password: "+patchExample+".")
	}
	op := ops[0]
	switch {
	case op.Op == nil || op.Path == nil:
		return "", web.BadRequest("Invalid JSON patch", `Each operation has an "op" and a "path": `+patchExample+".")
	case *op.Path != "/password":
		return "", web.Problemf(http.StatusBadRequest, "Only password can be patched", "Only /password can be changed, not %q.", *op.Path)
	case *op.Op != "replace":
		return "", web.Problemf(http.StatusBadRequest, "Invalid JSON patch", `Use "op": "replace" on /password, not %q.`, *op.Op)
	}
	var pw *string
	if err := json.Unmarshal(op.Value, &pw); err != nil || pw == nil {
		return "", web.BadRequest("Invalid JSON patch", `"value" must be the new password, a string.`)
	}
	return *pw, nil
}
