// Package oidclogin acts as a person's browser in front of Pasee as an
// OpenID Provider: it reads the discovery document, fills in the
// server-rendered login page (the form that has a password field, with
// whatever hidden fields, such as the CSRF token, it carries) and follows
// the authorization request to the code sent to the client's redirect URI.
//
// It knows only what a browser knows: the standard endpoints that
// discovery advertises and the HTML of the page, so that the tests and
// the benchmark using it keep working whatever the page's markup.
package oidclogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Discovery is the part of the OpenID Provider metadata the tests use.
type Discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint"`
	RevocationEndpoint    string   `json:"revocation_endpoint"`
	EndSessionEndpoint    string   `json:"end_session_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	ScopesSupported       []string `json:"scopes_supported"`
}

// Discover reads <issuer>/.well-known/openid-configuration and checks that
// it names issuer and the endpoints a code-flow client needs.
func Discover(ctx context.Context, client *http.Client, issuer string) (*Discovery, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: GET %s: %s: %.300s", u, resp.Status, body)
	}
	var d Discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if d.Issuer != issuer {
		return nil, fmt.Errorf("discovery: issuer %q, want %q", d.Issuer, issuer)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" {
		return nil, fmt.Errorf("discovery: no authorization or token endpoint: %s", body)
	}
	return &d, nil
}

// Form is an HTML form as a browser would submit it.
type Form struct {
	Action *url.URL
	Method string
	Values url.Values
}

// LoginForm finds, in the page at pageURL, the form that has a password
// field (the first one, or the first whose markup mentions provider when
// provider is not empty), with the values of its fields as served.
func LoginForm(page []byte, pageURL *url.URL, provider string) (*Form, error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return nil, fmt.Errorf("login page: %w", err)
	}
	var forms []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "form" {
			forms = append(forms, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range forms {
		var fields []*html.Node
		hasPassword, mentions := false, provider == ""
		var visit func(*html.Node)
		visit = func(n *html.Node) {
			if n.Type == html.ElementNode {
				if n.Data == "input" || n.Data == "button" {
					fields = append(fields, n)
					if n.Data == "input" && attr(n, "type") == "password" {
						hasPassword = true
					}
				}
				for _, a := range n.Attr {
					if strings.Contains(a.Val, provider) {
						mentions = true
					}
				}
			}
			if n.Type == html.TextNode && provider != "" && strings.Contains(n.Data, provider) {
				mentions = true
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				visit(c)
			}
		}
		visit(f)
		if !hasPassword || !mentions {
			continue
		}
		action, err := pageURL.Parse(attr(f, "action"))
		if err != nil {
			return nil, fmt.Errorf("login page: form action: %w", err)
		}
		form := &Form{Action: action, Method: strings.ToUpper(attr(f, "method")), Values: url.Values{}}
		if form.Method == "" {
			form.Method = http.MethodGet
		}
		for _, in := range fields {
			name := attr(in, "name")
			if name == "" {
				continue
			}
			switch {
			case in.Data == "button" || attr(in, "type") == "submit":
				// A submit button's value is sent only when it is the one
				// clicked: the first one is.
				if _, done := form.Values[name]; !done {
					form.Values.Set(name, attr(in, "value"))
				}
			case attr(in, "type") == "checkbox" || attr(in, "type") == "radio":
				if hasAttr(in, "checked") {
					form.Values.Add(name, attrOr(in, "value", "on"))
				}
			default:
				form.Values.Add(name, attr(in, "value"))
			}
		}
		return form, nil
	}
	return nil, fmt.Errorf("login page at %s has no login form with a password field%s: %.500s", pageURL, map[bool]string{true: " for " + provider}[provider != ""], page)
}

func attr(n *html.Node, key string) string { return attrOr(n, key, "") }

func attrOr(n *html.Node, key, def string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return def
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// Submit sends the form with login and password filled in.
func (f *Form) Submit(ctx context.Context, client *http.Client, login, password string) (*http.Response, error) {
	v := url.Values{}
	for k, vs := range f.Values {
		v[k] = append([]string(nil), vs...)
	}
	v.Set("login", login)
	v.Set("password", password)
	var req *http.Request
	var err error
	if f.Method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, f.Action.String(), strings.NewReader(v.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		u := *f.Action
		u.RawQuery = v.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	return client.Do(req)
}

// ErrNoCode is returned by Code when the authorization ended without a
// code: the error the provider sent to the redirect URI, or a page.
var ErrNoCode = errors.New("no authorization code")

// Code runs an authorization request as a browser: GET authorizeURL, and
// when Pasee shows its login page, log in with login and password; then
// follow the redirects up to redirectURI and return the query it is
// called with (code and state, or error). client must have a cookie jar
// (the login page's CSRF cookie, the single sign-on session) and follow
// redirects; Code stops at redirectURI without calling it.
func Code(ctx context.Context, client *http.Client, authorizeURL, redirectURI, login, password string) (url.Values, error) {
	c := *client
	var landed *url.URL
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			landed = req.URL
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}
	get := func(u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "text/html")
		return c.Do(req)
	}
	resp, err := get(authorizeURL)
	if err != nil {
		return nil, err
	}
	for range 2 {
		if landed != nil {
			drain(resp)
			q := landed.Query()
			if q.Get("code") == "" {
				return q, fmt.Errorf("%w: redirected with %s", ErrNoCode, landed.RawQuery)
			}
			return q, nil
		}
		page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK || login == "" {
			return nil, fmt.Errorf("%w: %s at %s: %.500s", ErrNoCode, resp.Status, resp.Request.URL, page)
		}
		form, err := LoginForm(page, resp.Request.URL, "")
		if err != nil {
			return nil, err
		}
		if resp, err = form.Submit(ctx, &c, login, password); err != nil {
			return nil, err
		}
		login = "" // once: a second page is a refusal
	}
	drain(resp)
	return nil, fmt.Errorf("%w: %s at %s", ErrNoCode, resp.Status, resp.Request.URL)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
