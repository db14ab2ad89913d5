package openid

import (
	"bytes"
	"embed"
	"html/template"

	"github.com/labstack/echo/v4"
)

//go:embed login.html
var pageFiles embed.FS

var pages = template.Must(template.ParseFS(pageFiles, "login.html"))

// pageCSP is the Content-Security-Policy of the provider's HTML pages:
// nothing runs, styles come from Pasee. form-action is left open on
// purpose: a login form's answer redirects to the client's registered
// redirect URI (or to a redirect provider), which form-action would block.
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

// providerView is one provider on the login page.
type providerView struct {
	Name     string
	Protocol string
	Password bool
}

// pageData is what login.html renders: the login page, the logout
// confirmation or an error.
type pageData struct {
	Base       string
	Title      string
	ClientName string
	Error      string // shown above the forms
	// Login page.
	Request   string
	CSRF      string
	LoginHint string
	Providers []providerView
	// Logout confirmation.
	Logout       bool
	LogoutParams map[string]string
	// Error page, or (Done) a plain message.
	Done   bool
	Fatal  bool
	Detail string
}

// render writes an HTML page with status.
func (p *Provider) render(c echo.Context, status int, d pageData) error {
	d.Base = p.public
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, "login.html", d); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	return c.HTMLBlob(status, buf.Bytes())
}

// errorPage is the answer to an authorization request that cannot be
// sent back to the client: an unknown client, a redirect URI it did not
// register. It never redirects.
func (p *Provider) errorPage(c echo.Context, status int, title, detail string) error {
	return p.render(c, status, pageData{Title: title, Fatal: true, Detail: detail})
}
