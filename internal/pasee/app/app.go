package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/adminui"
	"github.com/kisee-pasee/suite/internal/pasee/api"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	kiseeprovider "github.com/kisee-pasee/suite/internal/pasee/provider/kisee"
	oauth2provider "github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	oidcprovider "github.com/kisee-pasee/suite/internal/pasee/provider/oidc"
	paseeprovider "github.com/kisee-pasee/suite/internal/pasee/provider/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/ratelimit"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/web"
)

// Options are choices made on the command line, not in settings.
type Options struct {
	Version   string
	NoMigrate bool
	Logger    *slog.Logger
}

// App is a wired Pasee, ready to serve.
type App struct {
	Config  *Config
	Service *pasee.Service
	Server  *web.Server
	Store   pasee.Store
	Logger  *slog.Logger
	closers []io.Closer
}

// OpenStore opens (and unless told otherwise migrates) the store at url.
func OpenStore(ctx context.Context, url string, migrate bool, logger *slog.Logger) (pasee.Store, error) {
	return store.Open(ctx, url, logger, migrate)
}

// Providers builds the identity providers of the settings.
func (cfg *Config) Providers() ([]pasee.Provider, error) {
	var out []pasee.Provider
	for i, ps := range cfg.IdentityProviders {
		key := fmt.Sprintf("identity_providers[%d].settings", i)
		var p pasee.Provider
		var err error
		switch ps.Protocol {
		case "kisee":
			var o kiseeprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = kiseeprovider.New(ps.Name, ps.Endpoint, o)
		case "pasee":
			var o paseeprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = paseeprovider.New(ps.Name, ps.Endpoint, o)
		case "oauth2":
			var o oauth2provider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = oauth2provider.New(ps.Name, o)
		case "oidc":
			var o oidcprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = oidcprovider.New(ps.Name, o)
		default:
			return nil, cfg.Source.Errorf(fmt.Sprintf("identity_providers[%d].protocol", i), "protocol %q is not available in this build", ps.Protocol)
		}
		var bad *oauth2provider.SettingError
		if errors.As(err, &bad) {
			return nil, cfg.Source.Errorf(key+"."+bad.Key, "%s", bad.Msg)
		}
		if err != nil {
			return nil, cfg.Source.Errorf(key, "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// New opens the store, builds the providers and wires the service and API.
func New(ctx context.Context, cfg *Config, o Options) (*App, error) {
	a := &App{Config: cfg, Logger: o.Logger}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	providers, err := cfg.Providers()
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(ctx, cfg.Storage.URL, !o.NoMigrate, a.Logger)
	if err != nil {
		return nil, fmt.Errorf("storage.url %s: %w", sqldb.Scrub(cfg.Storage.URL), err)
	}
	a.Store = st
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	limiter, err := a.limiter(ctx)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	counters := newCounters(reg)
	if l, ok := limiter.(*ratelimit.Limiter); ok {
		reg.MustRegister(ratelimit.Collectors("pasee", l)...)
	}
	grace := cfg.JWT.RefreshReuseGrace.Or(5 * time.Second)
	if cfg.Source.Has("jwt.refresh_reuse_grace") {
		grace = cfg.JWT.RefreshReuseGrace.D() // "0s" turns the grace window off
	}
	a.Service = pasee.NewService(pasee.Config{
		Store: st, Providers: providers, Keys: cfg.Keys, LegacyES256K: cfg.JWT.LegacyES256K,
		Issuer: cfg.JWT.Iss, Audience: cfg.JWT.Audience,
		AccessTTL: cfg.JWT.AccessTTL.Or(15 * time.Minute), RefreshTTL: cfg.JWT.RefreshTTL.Or(720 * time.Hour),
		ReuseGrace: grace, Limiter: limiter,
		Registration: cfg.Registration(), Logger: a.Logger, Metrics: counters.metrics,
	})
	a.Server, err = web.New(web.Config{
		Name: "pasee", Version: o.Version, Logger: a.Logger, Registry: reg,
		CORS:           web.CORSConfig{AllowedOrigins: cfg.CORS.AllowedOrigins, AllowCredentials: cfg.CORS.AllowCredentials},
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		return nil, cfg.Source.Errorf("cors", "%v", err)
	}
	var apiOpts []api.Option
	if slices.ContainsFunc(providers, func(p pasee.Provider) bool { _, ok := p.(pasee.RedirectLogin); return ok }) {
		// The browser flow of oauth2/oidc providers keeps its states and
		// codes in the same database, shared by every instance.
		fs, err := flow.OpenStorage(ctx, cfg.Storage.URL)
		if err != nil {
			return nil, fmt.Errorf("storage.url %s: %w", sqldb.Scrub(cfg.Storage.URL), err)
		}
		a.closers = append(a.closers, fs)
		apiOpts = append(apiOpts, api.WithRedirectFlow(flow.New(flow.Config{
			Service: a.Service, Storage: fs, Keys: cfg.Keys, LegacyES256K: cfg.JWT.LegacyES256K,
			Issuer: cfg.JWT.Iss, PublicURL: cfg.Hostname, AllowedRedirectURIs: redirectURIs(cfg), Logger: a.Logger,
			Limiter: requestLimiter(limiter),
		})))
	}
	if err := api.Register(a.Server, a.Service, api.Config{PublicURL: cfg.Hostname, Version: o.Version, Keys: cfg.Keys}, apiOpts...); err != nil {
		return nil, err
	}
	if err := adminui.Register(a.Server, adminui.Config{PublicURL: cfg.Hostname, Providers: providers, Version: o.Version}); err != nil {
		return nil, err
	}
	a.Server.Route(http.MethodGet, "/status", a.statusPage(o.Version, counters).Handler())
	ok = true
	return a, nil
}

// requestLimiter is the limiter's per-address request counter, or nil.
func requestLimiter(l pasee.Limiter) flow.RequestLimiter {
	if rl, ok := l.(flow.RequestLimiter); ok {
		return rl
	}
	return nil
}

// redirectURIs are where the browser flow may send its one-time codes:
// [cors] allowed_redirect_uris, and always Pasee's own administration page,
// <hostname>/admin/, which is served by Pasee itself and so as trusted as
// Pasee's own callback.
func redirectURIs(cfg *Config) []string {
	own := adminui.RedirectURI(cfg.Hostname)
	if slices.Contains(cfg.CORS.AllowedRedirectURIs, own) {
		return cfg.CORS.AllowedRedirectURIs
	}
	return append(slices.Clone(cfg.CORS.AllowedRedirectURIs), own)
}

// limiter builds the brute-force protection of [rate_limit]; store "sql"
// keeps the counters in the storage database.
func (a *App) limiter(ctx context.Context) (pasee.Limiter, error) {
	rl := a.Config.RateLimit
	var db *sql.DB
	var dialect string
	if rl.Store == "sql" {
		target, err := sqldb.ParseURL(a.Config.Storage.URL)
		if err != nil {
			return nil, a.Config.Source.Errorf("storage.url", "%v", err)
		}
		if db, err = sqldb.Open(ctx, target); err != nil {
			return nil, fmt.Errorf("rate_limit.store: %w", err)
		}
		a.closers = append(a.closers, db)
		dialect = string(target.Dialect)
	}
	l, closer, err := ratelimit.FromSettings(rl, db, dialect)
	if err != nil {
		return nil, a.Config.Source.Errorf("rate_limit.store", "%v", err)
	}
	if closer != nil {
		a.closers = append(a.closers, closer)
	}
	return l, nil
}

// Addr is the address the settings ask to listen on.
func (a *App) Addr() string {
	return net.JoinHostPort(a.Config.Host, strconv.Itoa(a.Config.Port))
}

// Run serves on ln until ctx is done, then drains in-flight requests.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	names := make([]string, 0, len(a.Config.IdentityProviders))
	for _, p := range a.Config.IdentityProviders {
		names = append(names, p.Name+" ("+p.Protocol+")")
	}
	a.Logger.Info("pasee listening", "addr", ln.Addr().String(), "public_url", a.Config.Hostname,
		"providers", names, "kid", a.Config.Keys.Current.KeyID(), "alg", a.Config.Keys.Current.Algorithm())
	return a.Server.Serve(ctx, ln, 20*time.Second)
}

// Close releases the store and the rate-limit store.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	a.closers = nil
	if a.Store != nil {
		_ = a.Store.Close()
	}
}
