package app

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/api"
	"github.com/kisee-pasee/suite/internal/kisee/backend/demo"
	"github.com/kisee-pasee/suite/internal/kisee/backend/htpasswd"
	"github.com/kisee-pasee/suite/internal/kisee/backend/ldap"
	"github.com/kisee-pasee/suite/internal/kisee/backend/remote"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/backend/sqlquery"
	"github.com/kisee-pasee/suite/internal/kisee/backend/static"
	"github.com/kisee-pasee/suite/internal/kisee/tokenstore"
	"github.com/kisee-pasee/suite/internal/password"
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
	// HashParams overrides the argon2id parameters (tests use cheap ones).
	HashParams *password.Params
	// SentryDSN, when set, reports panics and server errors to Sentry
	// (serve reads it from SENTRY_DSN).
	SentryDSN string
}

// App is a wired Kisee, ready to serve.
type App struct {
	Config  *Config
	Service *kisee.Service
	Server  *web.Server
	Logger  *slog.Logger
	closers []io.Closer
	tokens  kisee.TokenStore
	// schemas watch the databases opened without migrating (--no-migrate).
	schemas []*sqldb.SchemaWatch
}

// NewLogger returns the logger the settings ask for, writing to w. The
// original settings' [server] debug = true means level debug.
func NewLogger(s settings.Log, debug bool, w io.Writer) *slog.Logger {
	level := s.Level
	if debug && level == "" {
		level = "debug"
	}
	return web.NewLogger("kisee", s.Format, level, w)
}

// New opens the backend and the token store and wires the service and API.
func New(ctx context.Context, cfg *Config, o Options) (*App, error) {
	a := &App{Config: cfg, Logger: o.Logger}
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	params := password.OWASP
	if o.HashParams != nil {
		params = *o.HashParams
	}
	hasher := password.NewHasher(params, 0)
	// Each argon2id hash takes 19 MiB; give it back once logins pause.
	hasher.ReleaseMemoryWhenIdle(500*time.Millisecond, debug.FreeOSMemory)
	hashTime := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "kisee", Name: "password_hash_seconds", Help: "Time to hash or verify one password.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	reg.MustRegister(hashTime)
	hasher.Observe = func(d time.Duration) { hashTime.Observe(d.Seconds()) }

	backend, backendDB, backendURL, err := a.openBackend(ctx, hasher, o)
	if err != nil {
		return nil, err
	}
	storeURL := cfg.StorageURL(backendURL)
	storeDB := backendDB
	if storeDB == nil || storeURL != backendURL {
		if storeDB, err = a.openDB(ctx, "storage.url", storeURL, o); err != nil {
			return nil, err
		}
	}
	reg.MustRegister(collectors.NewDBStatsCollector(storeDB, "kisee"))
	a.tokens = tokenstore.New(storeDB)
	storeTarget, _ := sqldb.ParseURL(storeURL)
	limiter, limiterCloser, err := ratelimit.FromSettings(cfg.RateLimit, storeDB, string(storeTarget.Dialect))
	if err != nil {
		return nil, cfg.Source.Errorf("rate_limit.store", "%v", err)
	}
	if limiterCloser != nil {
		a.closers = append(a.closers, limiterCloser)
	}
	limiter.AddressLocked = addressLockWarner(a.Logger, cfg.Server.TrustedProxies)
	warnProxyAtStart(a.Logger, cfg.Server.Host, cfg.Server.TrustedProxies)
	reg.MustRegister(ratelimit.Collectors("kisee", limiter)...)

	logins := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "kisee", Name: "logins_total", Help: "Password checks, by result."}, []string{"result"})
	issued := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kisee", Name: "tokens_issued_total", Help: "Identity tokens issued."})
	registered := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kisee", Name: "users_registered_total", Help: "Users created by self-registration."})
	changed := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kisee", Name: "password_changes_total", Help: "Passwords changed through the API (reset token or Basic auth)."})
	reg.MustRegister(logins, issued, registered, changed)
	hour := struct{ logins, failures, lockouts, tokens *web.RollingCounter }{
		web.NewRollingCounter(nil), web.NewRollingCounter(nil), web.NewRollingCounter(nil), web.NewRollingCounter(nil),
	}
	recovery, err := a.recovery(backend, reg)
	if err != nil {
		return nil, err
	}
	a.registrationCheck(backend)

	a.Service = kisee.NewService(kisee.Config{
		Backend:      backend,
		Tokens:       a.tokens,
		Keys:         cfg.Keys,
		LegacyES256K: cfg.JWT.LegacyES256K,
		Issuer:       cfg.JWT.Iss,
		TTL:          cfg.JWT.TTL.D(),
		Logger:       a.Logger,
		Metrics: kisee.Metrics{
			LoginsSucceeded:  web.Counters{logins.WithLabelValues("success"), hour.logins},
			LoginsFailed:     web.Counters{logins.WithLabelValues("failure"), hour.failures},
			LoginsLocked:     web.Counters{logins.WithLabelValues("locked"), hour.lockouts},
			TokensIssued:     web.Counters{issued, hour.tokens},
			UsersRegistered:  registered,
			PasswordsChanged: changed,
		},
		Limiter:      limiter,
		Registration: cfg.Registration.Enabled,
		Recovery:     recovery,
	})
	a.Server, err = web.New(web.Config{
		Name: "kisee", Version: o.Version, Logger: a.Logger, Registry: reg, SentryDSN: o.SentryDSN,
		CORS:           web.CORSConfig{AllowedOrigins: cfg.CORS.AllowedOrigins, AllowCredentials: cfg.CORS.AllowCredentials},
		TrustedProxies: cfg.Server.TrustedProxies,
	})
	if err != nil {
		return nil, cfg.Source.Errorf("server", "%v", err)
	}
	if err := api.Register(a.Server, a.Service, api.Config{PublicURL: cfg.Server.Hostname, Version: o.Version, Keys: cfg.Keys}); err != nil {
		return nil, err
	}
	a.Server.Route(http.MethodGet, "/health", a.Server.HealthReport(o.Version, a.healthChecks(backend)))
	status := &web.StatusPage{
		Title: "Kisee", Version: o.Version, Started: time.Now(),
		Checks: []web.StatusCheck{{Name: "token store", Check: a.tokens.Ping}},
		Keys:   statusKeys(cfg),
		Counters: []web.StatusCounter{
			{Name: "successful logins", Counter: hour.logins}, {Name: "failed logins", Counter: hour.failures},
			{Name: "locked-out attempts", Counter: hour.lockouts}, {Name: "tokens issued", Counter: hour.tokens},
		},
	}
	if _, ok := backend.(kisee.HealthChecker); ok {
		// Cached (kisee.HealthCacheTTL): the status page is public.
		status.Checks = append(status.Checks, web.StatusCheck{Name: "identity backend (" + cfg.Backend + ")", Check: a.Service.BackendHealth})
	}
	a.Server.Route(http.MethodGet, "/status", status.Handler())
	ok = true
	return a, nil
}

// statusKeys lists the published keys for the status page, with the file
// the current key came from (its age is the file's).
func statusKeys(cfg *Config) []web.StatusKey {
	file := cfg.JWT.PrivateKeyFile
	if file == "" {
		file = cfg.KeyFile
	}
	keys := []web.StatusKey{{Key: cfg.Keys.Current.Public(), Role: "current", File: file}}
	for _, k := range cfg.Keys.Next {
		keys = append(keys, web.StatusKey{Key: k, Role: "next"})
	}
	for _, k := range cfg.Keys.Previous {
		keys = append(keys, web.StatusKey{Key: k, Role: "previous"})
	}
	return keys
}

// openBackend builds the configured backend. For the sql backend it also
// returns its database and URL, which the token store shares by default.
func (a *App) openBackend(ctx context.Context, hasher *password.Hasher, o Options) (kisee.Backend, *sql.DB, string, error) {
	cfg, src := a.Config, a.Config.Source
	const key = "identity_backend.options"
	raw := cfg.IdentityBackend.Options
	switch cfg.Backend {
	case "sql":
		var opts sqlbackend.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		if opts.URL == "" {
			opts.URL = cfg.Storage.URL
		}
		if opts.URL == "" {
			opts.URL = "sqlite:kisee.db"
		}
		db, err := a.openDB(ctx, key+".url", opts.URL, o)
		if err != nil {
			return nil, nil, "", err
		}
		b := sqlbackend.New(db, hasher, a.Logger)
		if a.schemaBehind(ctx) {
			a.Logger.Warn("the root user is not checked: the users table is not migrated; run `kisee migrate`, then restart")
			return b, db, opts.URL, nil
		}
		pw, created, err := b.EnsureRoot(ctx)
		if err != nil {
			return nil, nil, "", fmt.Errorf("create root user: %w", err)
		}
		if created {
			a.Logger.Warn("root password: "+pw, "note", "created the superuser root; this password is shown once, change it with `kisee passwd root`")
		}
		return b, db, opts.URL, nil
	case "demo":
		// The original demo backend took placeholder options; they are ignored.
		b, pw, err := demo.New(ctx, hasher)
		if err != nil {
			return nil, nil, "", err
		}
		a.Logger.Warn("root password: "+pw, "note", "demo backend: users live in memory and vanish at exit")
		return b, nil, "", nil
	case "test":
		var opts static.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		b, err := static.New(ctx, hasher, opts)
		if err != nil {
			return nil, nil, "", src.Errorf(key+".users", "%v", err)
		}
		return b, nil, "", nil
	}
	var b kisee.Backend
	var section any // the options, to locate errors at the key they name
	var err error
	switch cfg.Backend {
	case "htpasswd":
		var opts htpasswd.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		b, err = htpasswd.Open(ctx, opts, hasher, a.Logger)
		section = opts
	case "sql-query":
		// Someone else's database: never a home for Kisee's own tables.
		var opts sqlquery.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		b, err = sqlquery.Open(ctx, opts, hasher, a.Logger)
		section = opts
	case "ldap":
		var opts ldap.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		b, err = ldap.Open(ctx, opts, a.Logger)
		section = opts
	case "remote":
		var opts remote.Options
		if err := src.DecodeSection(key, raw, &opts); err != nil {
			return nil, nil, "", err
		}
		if opts.LegacyES256K == nil {
			opts.LegacyES256K = &cfg.JWT.LegacyES256K
		}
		b, err = remote.New(opts)
		section = opts
	default:
		return nil, nil, "", src.Errorf("identity_backend.class", "backend %q is not available in this build", cfg.Backend)
	}
	if err != nil {
		return nil, nil, "", src.OptionError(key, section, err)
	}
	if c, ok := b.(io.Closer); ok {
		a.closers = append(a.closers, c)
	}
	return b, nil, "", nil
}

// openDB opens and migrates the database at url; key locates errors.
func (a *App) openDB(ctx context.Context, key, url string, o Options) (*sql.DB, error) {
	target, err := sqldb.ParseURL(url)
	if err != nil {
		return nil, a.Config.Source.Errorf(key, "%v", err)
	}
	db, err := sqldb.Open(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	a.closers = append(a.closers, db)
	if !o.NoMigrate {
		if err := Migrate(ctx, db, target.Dialect, a.Logger); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return db, nil
	}
	fsys, err := migrations.Kisee(string(target.Dialect))
	if err != nil {
		return nil, err
	}
	w := sqldb.NewSchemaWatch(db, target.Dialect, fsys, migrations.KiseeTable, "kisee")
	if err := w.Check(ctx); err != nil {
		if !sqldb.IsSchemaBehind(err) {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		a.Logger.Error("database schema is behind: /health stays red until migrated", "database", sqldb.Scrub(url), "error", err.Error())
	}
	a.schemas = append(a.schemas, w)
	return db, nil
}

// healthChecks are what /health reports: the token store and the schemas
// of databases opened without migrating, and the backend on its own line.
func (a *App) healthChecks(backend kisee.Backend) web.HealthChecks {
	hc := web.HealthChecks{Database: func(ctx context.Context) error {
		if err := a.tokens.Ping(ctx); err != nil {
			return fmt.Errorf("token store: %w", err)
		}
		for _, w := range a.schemas {
			if err := w.Check(ctx); err != nil {
				return err
			}
		}
		return nil
	}}
	if _, ok := backend.(kisee.HealthChecker); ok {
		// Cached (kisee.HealthCacheTTL): /health is public, and must not
		// make every request a call to LDAP or to a remote service.
		hc.Backend = a.Service.BackendHealth
	}
	return hc
}

// schemaBehind reports whether a database opened without migrating lacks
// migrations.
func (a *App) schemaBehind(ctx context.Context) bool {
	for _, w := range a.schemas {
		if sqldb.IsSchemaBehind(w.Check(ctx)) {
			return true
		}
	}
	return false
}

// Migrate applies Kisee's migrations to db.
func Migrate(ctx context.Context, db *sql.DB, dialect sqldb.Dialect, logger *slog.Logger) error {
	fsys, err := migrations.Kisee(string(dialect))
	if err != nil {
		return err
	}
	return sqldb.Migrate(ctx, db, dialect, fsys, migrations.KiseeTable, logger)
}

// Addr is the address the settings ask to listen on.
func (a *App) Addr() string {
	return net.JoinHostPort(a.Config.Server.Host, strconv.Itoa(a.Config.Server.Port))
}

// Run serves on ln until ctx is done, then drains in-flight requests. It
// purges expired token records every hour.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	go a.purge(ctx)
	settings.LogOverrides(a.Logger, a.Config.Source)
	a.Logger.Info("kisee listening", "addr", ln.Addr().String(), "public_url", a.Config.Server.Hostname,
		"backend", a.Config.Backend, "kid", a.Config.Keys.Current.KeyID(), "alg", a.Config.Keys.Current.Algorithm())
	return a.Server.Serve(ctx, ln, 20*time.Second)
}

func (a *App) purge(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := a.tokens.Purge(ctx, time.Now()); err != nil && ctx.Err() == nil {
			a.Logger.Warn("purge expired tokens", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close releases the databases.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i].Close()
	}
	a.closers = nil
}
