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
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/adminui"
	"github.com/kisee-pasee/suite/internal/pasee/api"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/pasee/openid"
	kiseeprovider "github.com/kisee-pasee/suite/internal/pasee/provider/kisee"
	oauth2provider "github.com/kisee-pasee/suite/internal/pasee/provider/oauth2"
	oidcprovider "github.com/kisee-pasee/suite/internal/pasee/provider/oidc"
	paseeprovider "github.com/kisee-pasee/suite/internal/pasee/provider/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/provider/upstream"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/ratelimit"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/migrations"
)

// Options are choices made on the command line, not in settings.
type Options struct {
	Version   string
	NoMigrate bool
	Logger    *slog.Logger
	// SentryDSN, when set, reports panics and server errors to Sentry
	// (serve reads it from SENTRY_DSN).
	SentryDSN string
}

// App is a wired Pasee, ready to serve.
type App struct {
	Config  *Config
	Service *pasee.Service
	Server  *web.Server
	Store   pasee.Store
	Logger  *slog.Logger
	closers []io.Closer
	// schema watches the store's schema when it was opened without
	// migrating (--no-migrate); nil otherwise.
	schema *sqldb.SchemaWatch
	// probes check the kisee and pasee providers' /health, by name.
	probes map[string]*probe
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
		var section any // the options, to locate errors at the key they name
		var err error
		switch ps.Protocol {
		case "kisee":
			var o kiseeprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			if _, err := kiseeprovider.ParseRevocation(o.CheckRevocation); err != nil {
				return nil, cfg.Source.Errorf(key+".check_revocation", "%v", strings.TrimPrefix(err.Error(), "check_revocation: "))
			}
			cfg.defaultLegacy(&o.Options)
			p, err = kiseeprovider.New(ps.Name, ps.Endpoint, o)
			section = o
		case "pasee":
			var o paseeprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			cfg.defaultLegacy(&o.Options)
			p, err = paseeprovider.New(ps.Name, ps.Endpoint, o)
			section = o
		case "oauth2":
			var o oauth2provider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = oauth2provider.New(ps.Name, o)
			section = o
		case "oidc":
			var o oidcprovider.Options
			if err := cfg.Source.DecodeSection(key, ps.Settings, &o); err != nil {
				return nil, err
			}
			p, err = oidcprovider.New(ps.Name, o)
			section = o
		default:
			return nil, cfg.Source.Errorf(fmt.Sprintf("identity_providers[%d].protocol", i), "protocol %q is not available in this build", ps.Protocol)
		}
		var bad *oauth2provider.SettingError
		if errors.As(err, &bad) {
			return nil, cfg.Source.Errorf(key+"."+bad.Key, "%s", bad.Msg)
		}
		if err != nil {
			return nil, cfg.Source.OptionError(key, section, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// defaultLegacy gives a provider without its own legacy_es256k the value
// of [jwt] legacy_es256k: the one switch that lets this Pasee sit beside
// the original services covers what it verifies as well as what it signs.
func (cfg *Config) defaultLegacy(o *upstream.Options) {
	if o.LegacyES256K == nil {
		v := cfg.JWT.LegacyES256K
		o.LegacyES256K = &v
	}
}

// New opens the store, builds the providers and wires the service and API.
func New(ctx context.Context, cfg *Config, o Options) (*App, error) {
	a := &App{Config: cfg, Logger: o.Logger}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	for _, k := range cfg.Legacy {
		a.Logger.Warn(k.Warning(cfg.Source.File))
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
	a.warnIfCommitsMayBeLost(ctx)
	if o.NoMigrate {
		if err := a.watchSchema(ctx); err != nil {
			return nil, err
		}
	}
	a.probes = providerProbes(cfg)
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
		Name: "pasee", Version: o.Version, Logger: a.Logger, Registry: reg, SentryDSN: o.SentryDSN,
		CORS:           web.CORSConfig{AllowedOrigins: cfg.CORS.AllowedOrigins, AllowCredentials: cfg.CORS.AllowCredentials},
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		return nil, cfg.Source.Errorf("cors", "%v", err)
	}
	var apiOpts []api.Option
	var browserFlow *flow.Flow
	var flowStorage *flow.SQLStorage
	if slices.ContainsFunc(providers, func(p pasee.Provider) bool { _, ok := p.(pasee.RedirectLogin); return ok }) {
		// The browser flow of oauth2/oidc providers keeps its states and
		// codes in the same database, shared by every instance.
		fs, err := flow.OpenStorage(ctx, cfg.Storage.URL)
		if err != nil {
			return nil, fmt.Errorf("storage.url %s: %w", sqldb.Scrub(cfg.Storage.URL), err)
		}
		a.closers = append(a.closers, fs)
		flowStorage = fs
		browserFlow = flow.New(flow.Config{
			Service: a.Service, Storage: fs, Keys: cfg.Keys, LegacyES256K: cfg.JWT.LegacyES256K,
			Issuer: cfg.JWT.Iss, PublicURL: cfg.Hostname, AllowedRedirectURIs: redirectURIs(cfg), Logger: a.Logger,
			Limiter: requestLimiter(limiter),
		})
		apiOpts = append(apiOpts, api.WithRedirectFlow(browserFlow))
	}
	op, err := a.openIDProvider(ctx, reg, browserFlow, flowStorage)
	if err != nil {
		return nil, err
	}
	if op != nil {
		apiOpts = append(apiOpts, api.WithIntrospectionAuth(op.AuthenticateIntrospection))
	}
	if err := api.Register(a.Server, a.Service, api.Config{PublicURL: cfg.Hostname, Version: o.Version, Keys: cfg.Keys}, apiOpts...); err != nil {
		return nil, err
	}
	ui := adminui.Config{PublicURL: cfg.Hostname, Version: o.Version}
	if op != nil {
		ui.OpenID = &adminui.Endpoints{Authorize: openid.PathAuthorize, Token: openid.PathToken, Revoke: openid.PathRevoke, EndSession: openid.PathLogout}
	}
	if err := adminui.Register(a.Server, ui); err != nil {
		return nil, err
	}
	if op != nil {
		op.Register(a.Server)
	}
	a.Server.Route(http.MethodGet, "/status", a.statusPage(o.Version, counters).Handler())
	a.Server.Route(http.MethodGet, "/health", a.Server.HealthReport(o.Version, a.healthChecks()))
	ok = true
	return a, nil
}

// commitSetting is a store that can say how durable its commits are
// (PostgreSQL's synchronous_commit).
type commitSetting interface {
	SynchronousCommit(ctx context.Context) (string, error)
}

// warnIfCommitsMayBeLost logs a warning when PostgreSQL answers commits
// before they are written to its log (synchronous_commit = off): a crash
// of the database then loses refreshes Pasee already answered, and their
// clients' next refresh is refused as reuse. An unreachable database says
// nothing here; /health reports it.
func (a *App) warnIfCommitsMayBeLost(ctx context.Context) {
	cs, ok := a.Store.(commitSetting)
	if !ok {
		return
	}
	if v, err := cs.SynchronousCommit(ctx); err == nil && v == "off" {
		a.Logger.Warn("synchronous_commit is off for Pasee's database: a database crash can lose refreshes already answered, whose sessions then end as reuse; set it to on (ALTER DATABASE ... SET synchronous_commit = on)",
			"database", sqldb.Scrub(a.Config.Storage.URL))
	}
}

// requestLimiter is the limiter's per-address request counter, or nil.
func requestLimiter(l pasee.Limiter) flow.RequestLimiter {
	if rl, ok := l.(flow.RequestLimiter); ok {
		return rl
	}
	return nil
}

// watchSchema checks, for a store opened without migrating, that its
// schema is current: when it is not, the log says to run `pasee migrate`
// and /health stays red until it has run.
func (a *App) watchSchema(ctx context.Context) error {
	target, err := sqldb.ParseURL(a.Config.Storage.URL)
	if err != nil {
		return a.Config.Source.Errorf("storage.url", "%v", err)
	}
	db, err := sqldb.Open(ctx, target)
	if err != nil {
		return fmt.Errorf("storage.url %s: %w", sqldb.Scrub(a.Config.Storage.URL), err)
	}
	a.closers = append(a.closers, db)
	fsys, err := migrations.Pasee(string(target.Dialect))
	if err != nil {
		return err
	}
	a.schema = sqldb.NewSchemaWatch(db, target.Dialect, fsys, migrations.PaseeTable, "pasee")
	if err := a.schema.Check(ctx); err != nil {
		if !sqldb.IsSchemaBehind(err) {
			return fmt.Errorf("storage.url %s: %w", sqldb.Scrub(a.Config.Storage.URL), err)
		}
		a.Logger.Error("database schema is behind: /health stays red until migrated", "database", sqldb.Scrub(a.Config.Storage.URL), "error", err.Error())
	}
	return nil
}

// healthChecks are what /health reports: the store (and its schema), and
// each provider, Kisee and Pasee ones by their /health, the others
// unchecked. It is red only when no login can be served.
func (a *App) healthChecks() web.HealthChecks {
	hc := web.HealthChecks{
		Database: func(ctx context.Context) error {
			if err := a.Store.Ping(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if a.schema != nil {
				return a.schema.Check(ctx)
			}
			return nil
		},
		Providers: map[string]func(context.Context) error{},
	}
	for _, p := range a.Config.IdentityProviders {
		hc.Providers[p.Name] = nil
		if pr, ok := a.probes[p.Name]; ok {
			hc.Providers[p.Name] = pr.Check
		}
	}
	return hc
}

// warnUnreachable probes the providers once at start and logs those that
// do not answer: a Pasee whose Kisee is down should say so when it starts.
func (a *App) warnUnreachable(ctx context.Context) {
	select { // a moment, for a Kisee started alongside (make run)
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	for name, p := range a.probes {
		if err := p.Check(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Warn("identity provider unreachable", "provider", name, "error", err.Error())
		}
	}
}

// redirectURIs are where the browser flow may send its one-time codes:
// [cors] allowed_redirect_uris, and always Pasee's own administration page,
// <hostname>/admin/, which is served by Pasee itself and so as trusted as
// Pasee's own callback.
func redirectURIs(cfg *Config) []string {
	own := adminui.RedirectURI(cfg.Hostname)
	out := cfg.CORS.AllowedRedirectURIs
	if !slices.Contains(out, own) {
		out = append(slices.Clone(out), own)
	}
	if op := openid.CallbackURL(cfg.Hostname); !slices.Contains(out, op) {
		// The login page's redirect-provider buttons come back there.
		out = append(slices.Clone(out), op)
	}
	return out
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
	settings.LogOverrides(a.Logger, a.Config.Source)
	go a.warnUnreachable(ctx)
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
