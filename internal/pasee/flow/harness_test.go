package flow_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/docs/openapi"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/openapitest"
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/api"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	"github.com/kisee-pasee/suite/internal/pasee/provider/oidc"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// appCallback is the redirect URI of the app in [cors] allowed_redirect_uris.
const (
	appCallback = "https://app.example.com/callback"
	appOrigin   = "https://app.example.com"
)

// clock is a test clock that can jump ahead.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// instance is one running Pasee with the browser flow: the same wiring as
// the pasee command's, with a clock the test controls.
type instance struct {
	URL     string // where it listens
	Public  string // its hostname setting (shared by the instances of a cluster)
	Service *pasee.Service
	Key     *token.PrivateKey
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// env is a set of providers (GitHub-like, Twitter-like, OIDC) and the
// Pasee instances above them, sharing one database and one key.
type env struct {
	t         *testing.T
	storage   string
	key       *token.PrivateKey
	clock     *clock
	public    string
	providers []pasee.Provider
	github    *oauthtest.Server
	twitter   *oauthtest.Server
	corp      *oauthtest.Server
	pasee     *instance
}

func newEnv(t *testing.T, kind paseetest.Store) *env {
	t.Helper()
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, storage: kind.URL(t), key: key, clock: &clock{}}
	e.github = oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})
	e.twitter = oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.Twitter})
	e.corp = oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.OIDC})
	timeout := settings.Duration(2 * time.Second)
	gh, err := oauth2.New("github", oauth2.Options{
		ClientOptions: oauth2.ClientOptions{AppID: e.github.ClientID(), AppSecret: e.github.ClientSecret(), Claims: []string{"login"}, Timeout: timeout},
		Preset:        "github", AuthURL: e.github.AuthURL(), TokenURL: e.github.TokenURL(), UserinfoURL: e.github.UserinfoURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tw, err := oauth2.New("twitter", oauth2.Options{
		ClientOptions: oauth2.ClientOptions{ClientID: e.twitter.ClientID(), ClientSecret: e.twitter.ClientSecret(), Claims: []string{"username"}, Timeout: timeout},
		Preset:        "twitter", AuthURL: e.twitter.AuthURL(), TokenURL: e.twitter.TokenURL(), UserinfoURL: e.twitter.UserinfoURL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	corp, err := oidc.New("corp", oidc.Options{
		ClientOptions: oauth2.ClientOptions{AppID: e.corp.ClientID(), AppSecret: e.corp.ClientSecret(), Claims: []string{"email", "name"}, Timeout: timeout},
		Issuer:        e.corp.URL,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.providers = []pasee.Provider{gh, tw, corp}
	e.pasee = e.start()
	return e
}

// start runs one more Pasee instance on the env's database, key and
// hostname (the first instance's address).
func (e *env) start() *instance {
	t := e.t
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inst := &instance{URL: "http://" + ln.Addr().String(), Key: e.key, logs: &syncBuffer{}}
	if e.public == "" {
		e.public = inst.URL
		for _, s := range []struct {
			srv  *oauthtest.Server
			name string
		}{{e.github, "github"}, {e.twitter, "twitter"}, {e.corp, "corp"}} {
			s.srv.SetRedirectURIs(e.public + "/tokens/?idp=" + s.name)
		}
	}
	inst.Public = e.public
	logger := slog.New(slog.NewTextHandler(inst.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(ctx, e.storage, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	keys := token.KeyRing{Current: e.key}
	inst.Service = pasee.NewService(pasee.Config{Store: st, Providers: e.providers, Keys: keys, Issuer: e.public, Now: e.clock.Now, Logger: logger})
	fs, err := flow.OpenStorage(ctx, e.storage)
	if err != nil {
		t.Fatal(err)
	}
	fl := flow.New(flow.Config{Service: inst.Service, Storage: fs, Keys: keys, Issuer: e.public, PublicURL: e.public,
		AllowedRedirectURIs: []string{appCallback, "http://127.0.0.1:9999/spa/?from=pasee"}, Now: e.clock.Now, Logger: logger})
	srv, err := web.New(web.Config{Name: "pasee", Version: "test", Logger: logger, CORS: web.CORSConfig{AllowedOrigins: []string{appOrigin}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Register(srv, inst.Service, api.Config{PublicURL: e.public, Version: "test", Keys: keys}, api.WithRedirectFlow(fl)); err != nil {
		t.Fatal(err)
	}
	v, err := openapitest.New(openapi.Pasee())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(v.Wrap(t, srv))
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); fs.Close(); st.Close() })
	return inst
}

// response is a response read in full, redirects not followed.
type response struct {
	*http.Response
	Body     string
	Location *url.URL
}

var browser = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, href string) *response {
	t.Helper()
	resp, err := browser.Get(href)
	if err != nil {
		t.Fatalf("GET %s: %v", href, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := &response{Response: resp, Body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		if r.Location, err = url.Parse(loc); err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
	}
	return r
}

func (r *response) wantRedirect(t *testing.T) *url.URL {
	t.Helper()
	if r.StatusCode != http.StatusFound || r.Location == nil {
		t.Fatalf("GET %s: %d %s, want a 302", r.Request.URL, r.StatusCode, r.Body)
	}
	return r.Location
}

// wantProblem checks status and title, and that nothing redirects.
func (r *response) wantProblem(t *testing.T, status int, title string) {
	t.Helper()
	if r.StatusCode != status || !strings.Contains(r.Body, `"title":"`+title+`"`) || r.Location != nil {
		t.Fatalf("GET %s: %d %s (Location %v), want %d %q without redirection", r.Request.URL.Redacted(), r.StatusCode, r.Body, r.Location, status, title)
	}
}

// begin is the app sending the browser to Pasee; it returns the provider's
// authorization URL.
func (inst *instance) begin(t *testing.T, query url.Values) *url.URL {
	t.Helper()
	return get(t, inst.URL+"/tokens/?"+query.Encode()).wantRedirect(t)
}

// atProvider is the user at the provider; it returns where the provider
// sends the browser back (Pasee's callback).
func atProvider(t *testing.T, authURL *url.URL) *url.URL {
	t.Helper()
	return get(t, authURL.String()).wantRedirect(t)
}

// callback delivers the provider's callback to inst (any instance behind
// the shared hostname).
func (inst *instance) callback(t *testing.T, cb *url.URL) *response {
	t.Helper()
	if !strings.HasPrefix(cb.String(), inst.Public+"/tokens/?") {
		t.Fatalf("callback %s is not Pasee's registered callback", cb.Redacted())
	}
	return get(t, inst.URL+"/tokens/?"+cb.RawQuery)
}

// login runs a whole login from the app: it returns the query Pasee sends
// the app back with.
func (inst *instance) login(t *testing.T, idp, appState string) url.Values {
	t.Helper()
	q := url.Values{"idp": {idp}, "redirect_uri": {appCallback}}
	if appState != "" {
		q.Set("state", appState)
	}
	back := inst.callback(t, atProvider(t, inst.begin(t, q))).wantRedirect(t)
	if got := back.Scheme + "://" + back.Host + back.Path; got != appCallback {
		t.Fatalf("Pasee redirected to %s, not the app's redirect_uri", got)
	}
	return back.Query()
}
