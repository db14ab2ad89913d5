// Package adminui serves Pasee's administration page at /admin/: a page a
// person uses to see the group tree they may administer, manage members
// and staff, look up users, ban and unban them, revoke their sessions and
// read the audit log.
//
// The page is a shell rendered once by the server and a script and a
// style sheet embedded in the binary: plain HTML, CSS and JavaScript, no
// build step, no framework, nothing from another origin. The page is a
// public OpenID Connect client of Pasee, built in (ClientID, redirected to
// /admin/): it logs in with the authorization code flow and PKCE through
// Pasee's own login page, which offers every provider, keeps the access
// token in memory and the refresh token in sessionStorage, renews the pair
// at the token endpoint before the access token expires, and calls only
// Pasee's public API with the user's own token: every rule of the API holds
// there as it does for any client, and the page shows controls only where
// the API says the user administers (the "administered" flag of GET
// /groups/).
//
// Every response carries a strict Content-Security-Policy (CSP): scripts,
// styles and requests from this origin only, no inline code, no plugins,
// no framing, and Trusted Types required, so that no string can become
// HTML or script.
package adminui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/web"
)

// Path is where the page is served; with Pasee's hostname in front, it is
// the redirect_uri the page gives the browser flow.
const Path = "/admin/"

// CSP is the Content-Security-Policy of every /admin/ response. It is the
// strict policy of a same-origin app (default-src 'none'; script, style,
// connect and img from 'self'; img also data: for the empty favicon;
// forms post only here; no framing; no <base>), plus Trusted Types: the
// script never turns a string into HTML, and the browser enforces it.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed shell.html static
var files embed.FS

// RedirectURI is the page's address, where the authorization code flow
// comes back and the logout ends: <hostname>/admin/.
func RedirectURI(publicURL string) string {
	return strings.TrimSuffix(publicURL, "/") + Path
}

// ClientID is the page's client id at Pasee as an OpenID Provider: a
// public client (PKCE) whose only redirect and post-logout redirect URI is
// RedirectURI.
const ClientID = "pasee-admin"

// ClientName is how Pasee's login page names the page.
const ClientName = "Pasee administration"

// Endpoints are the paths, below the hostname, of the OpenID Provider's
// endpoints the page calls.
type Endpoints struct {
	Authorize, Token, Revoke, EndSession string
}

// Config describes the page.
type Config struct {
	// PublicURL is Pasee's hostname setting: the page calls the API under
	// its path and is its own redirect URI, RedirectURI.
	PublicURL string
	// OpenID are the endpoints the page logs in and out with; nil when
	// Pasee is no OpenID Provider: the page then says it cannot log in.
	OpenID *Endpoints
	// Version is shown in the page's footer.
	Version string
}

// file is an embedded file ready to serve.
type file struct {
	body        []byte
	contentType string
}

func newFile(name string, body []byte) file {
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) { // not left to the system's MIME table
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".html":
		ct = "text/html; charset=utf-8"
	}
	return file{body: body, contentType: ct}
}

// shellData is what shell.html is rendered with.
type shellData struct {
	Base        string // the path of the hostname ("" or "/pasee"): the API's prefix
	RedirectURI string
	ClientID    string
	Version     string
	Endpoints
}

// Register adds the page's routes to s: GET /admin/ (the shell), GET
// /admin (a redirect to it) and GET /admin/{file} (script and style sheet).
func Register(s *web.Server, cfg Config) error {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("admin page: hostname %q: %w", cfg.PublicURL, err)
	}
	data := shellData{Base: strings.TrimSuffix(u.Path, "/"), RedirectURI: RedirectURI(cfg.PublicURL), ClientID: ClientID, Version: cfg.Version}
	if e := cfg.OpenID; e != nil {
		data.Endpoints = Endpoints{Authorize: data.Base + e.Authorize, Token: data.Base + e.Token, Revoke: data.Base + e.Revoke, EndSession: data.Base + e.EndSession}
	}
	tmpl, err := template.ParseFS(files, "shell.html")
	if err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	shell := newFile("shell.html", b.Bytes())
	assets := map[string]file{}
	err = fs.WalkDir(files, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		assets[path.Base(name)] = newFile(name, body)
		return nil
	})
	if err != nil {
		return fmt.Errorf("admin page: %w", err)
	}

	s.Add(http.MethodGet, Path, func(c echo.Context) error { return serve(c, shell) })
	s.Add(http.MethodGet, strings.TrimSuffix(Path, "/"), func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, data.Base+Path)
	})
	s.Add(http.MethodGet, Path+":file", func(c echo.Context) error {
		f, ok := assets[c.Param("file")]
		if !ok {
			return web.NotFound("Not found", "The administration page has no such file.")
		}
		return serve(c, f)
	})
	return nil
}

// serve answers f with the page's headers. Like every answer of Pasee but
// its public documents, the page is not stored (Cache-Control: no-store,
// set by the server for all): a new binary's page shows at once, and the
// page weighs some 40 KB, fetched when an administrator opens it.
func serve(c echo.Context, f file) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	return c.Blob(http.StatusOK, f.contentType, f.body)
}
