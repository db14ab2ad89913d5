package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/internal/cmdline"
	"github.com/kisee-pasee/suite/internal/kisee"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/tokenstore"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/web"
)

// Stdio are the streams of a command.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

const usage = `Usage: kisee [--settings FILE] [COMMAND] [ARGS]

Commands:
  (none), serve        serve the API (default settings.toml, ~/settings.toml, /etc/kisee/settings.toml;
                       none found: embedded defaults)
  quickstart           write a settings file with a fresh signing key
  useradd NAME         add a user to the sql backend [--email E] [--superuser] [--password-stdin]
  passwd NAME          change a user's password (sql backend) [--password-stdin]
  migrate              apply the database migrations and exit
  healthcheck          exit 0 if the local server's /health is green [--url URL]
  keygen               print a fresh private key [--alg ES256|ES384|ES256K|EdDSA|RS256]
  version              print the version
  help [COMMAND]       print this help, or COMMAND's (as COMMAND --help does)

Flags (anywhere on the line):
` + globalFlags

const globalFlags = `  --settings FILE      settings file; --settings-file FILE is the same
  --no-migrate         do not apply database migrations at start
  -h, --help           print the usage of the command and do nothing else
`

// Main runs the kisee command and returns its exit status: 0, 1 when the
// command failed, 2 when the command line was not understood.
func Main(ctx context.Context, args []string, io Stdio, version string) int {
	prog := &cmdline.Program{Name: "kisee", Usage: usage, Global: globalFlags, Out: io.Out, Err: io.Err}
	path, args, err := cmdline.ExtractFlag(args, "--settings", "--settings-file")
	if err != nil {
		return prog.Exit(prog.Usagef("%v", err), true)
	}
	noMigrate, args := cmdline.ExtractBool(args, "--no-migrate")
	cmd, args, named := cmdline.Command(args, "serve")
	if cmd == "help" || (!named && cmdline.WantsHelp(args)) {
		return prog.Help()
	}
	c := &command{io: io, prog: prog, version: version, settingsPath: path, noMigrate: noMigrate}
	switch cmd {
	case "serve":
		err = c.serve(ctx, args)
	case "quickstart":
		err = c.quickstart(args)
	case "useradd":
		err = c.useradd(ctx, args)
	case "passwd":
		err = c.passwd(ctx, args)
	case "migrate":
		err = c.migrate(ctx, args)
	case "keygen":
		err = cmdline.Keygen(prog, args)
	case "healthcheck":
		err = c.healthcheck(ctx, args)
	case "version":
		err = c.printVersion(args)
	default:
		err = prog.Usagef("unknown command %q", cmd)
	}
	return prog.Exit(err, !named)
}

type command struct {
	io           Stdio
	prog         *cmdline.Program
	version      string
	settingsPath string
	noMigrate    bool
}

// load reads the settings: the --settings file, else the first found in
// the search paths, else embedded defaults.
func (c *command) load() (*Config, error) {
	path := c.settingsPath
	if path == "" {
		path = FindSettings()
	}
	return Load(path)
}

func (c *command) printVersion(args []string) error {
	if _, err := c.prog.Command("version", "", "Print the version.").Args(args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintln(c.io.Out, c.version)
	return nil
}

func (c *command) serve(ctx context.Context, args []string) error {
	fs := c.prog.Command("serve", "", "Serve the API until SIGINT or SIGTERM. Settings: the --settings file, else the first of\n"+
		strings.Join(SearchPaths(), ", ")+"; none found: embedded defaults (SQLite kisee.db,\na generated key in kisee-key.pem, 127.0.0.1:8140).")
	if _, err := fs.Args(args, 0, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	// Lines reach standard error from a writer of their own: a request
	// does not wait for its access log line's system call.
	logs := web.NewLogWriter(c.io.Err)
	defer logs.Close()
	logger := NewLogger(cfg.Log, cfg.Server.Debug, logs)
	cfg.LogSettings(logger)
	if cfg.KeyGenerated {
		logger.Info("generated a new signing key", "file", cfg.KeyFile, "kid", cfg.Keys.Current.KeyID())
	}
	a, err := New(ctx, cfg, Options{Version: c.version, NoMigrate: c.noMigrate, Logger: logger, SentryDSN: os.Getenv("SENTRY_DSN")})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", a.Addr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return a.Run(ctx, ln)
}

// loadWithoutKeys reads the settings for commands that never sign.
func (c *command) loadWithoutKeys() (*Config, error) {
	path := c.settingsPath
	if path == "" {
		path = FindSettings()
	}
	return LoadForAdmin(path)
}

// sqlBackend opens the sql backend of the settings, for useradd and passwd.
func (c *command) sqlBackend(ctx context.Context) (*Config, *sqlbackend.Backend, kisee.TokenStore, func(), error) {
	cfg, err := c.loadWithoutKeys()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if cfg.Backend != "sql" {
		return nil, nil, nil, nil, fmt.Errorf("this command manages the sql backend; the settings use %q", cfg.Backend)
	}
	var opts sqlbackend.Options
	if err := cfg.Source.DecodeSection("identity_backend.options", cfg.IdentityBackend.Options, &opts); err != nil {
		return nil, nil, nil, nil, err
	}
	if opts.URL == "" {
		opts.URL = cfg.StorageURL("")
	}
	a := &App{Config: cfg, Logger: NewLogger(cfg.Log, false, c.io.Err)}
	db, err := a.openDB(ctx, "identity_backend.options.url", opts.URL, Options{NoMigrate: c.noMigrate})
	if err != nil {
		a.Close()
		return nil, nil, nil, nil, err
	}
	storeDB := db
	if u := cfg.StorageURL(opts.URL); u != opts.URL {
		if storeDB, err = a.openDB(ctx, "storage.url", u, Options{NoMigrate: c.noMigrate}); err != nil {
			a.Close()
			return nil, nil, nil, nil, err
		}
	}
	return cfg, sqlbackend.New(db, password.NewHasher(password.OWASP, 0), a.Logger), tokenstore.New(storeDB), a.Close, nil
}

func (c *command) useradd(ctx context.Context, args []string) error {
	fs := c.prog.Command("useradd", "NAME [--email E] [--superuser] [--password-stdin]",
		"Add a user to the sql backend. The password is typed twice on the terminal, or read from\nstandard input with --password-stdin.")
	email := fs.String("email", "", "the user's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	superuser := fs.Bool("superuser", false, "make the user a superuser")
	names, err := fs.Args(args, 1, 1)
	if err != nil {
		return err
	}
	if err := kisee.ValidateUsername(names[0]); err != nil {
		return err
	}
	if *email != "" {
		// The API's checks: what it refuses, the CLI refuses too.
		if err := kisee.ValidateEmail(*email); err != nil {
			return err
		}
	}
	_, b, _, closeDB, err := c.sqlBackend(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	pw, err := cmdline.ReadPassword(c.io.In, *fromStdin, c.io.Err)
	if err != nil {
		return err
	}
	if err := kisee.NewPasswordPolicy().Check(pw, names[0], *email); err != nil {
		return err
	}
	if _, err := b.Register(ctx, kisee.NewUser{Username: names[0], Email: *email, Password: pw}); err != nil {
		if errors.Is(err, kisee.ErrUserExists) {
			return fmt.Errorf("user %q (or email %q) already exists", names[0], *email)
		}
		return err
	}
	if *superuser {
		if err := b.SetSuperuser(ctx, names[0], true); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.io.Out, "user %s added\n", names[0])
	return nil
}

func (c *command) passwd(ctx context.Context, args []string) error {
	fs := c.prog.Command("passwd", "NAME [--password-stdin]",
		"Change a user's password in the sql backend and revoke the user's tokens.")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	names, err := fs.Args(args, 1, 1)
	if err != nil {
		return err
	}
	_, b, tokens, closeDB, err := c.sqlBackend(ctx)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := b.FindByUsername(ctx, names[0])
	if err != nil {
		return fmt.Errorf("user %q: %w", names[0], err)
	}
	pw, err := cmdline.ReadPassword(c.io.In, *fromStdin, c.io.Err)
	if err != nil {
		return err
	}
	if err := kisee.NewPasswordPolicy().Check(pw, names[0], u.Email); err != nil {
		return err
	}
	if err := b.SetPassword(ctx, names[0], pw); err != nil {
		return err
	}
	if err := tokens.RevokeSubject(ctx, names[0], time.Now()); err != nil {
		return fmt.Errorf("password changed, but its tokens could not be revoked: %w", err)
	}
	fmt.Fprintf(c.io.Out, "password of %s changed; its tokens are revoked\n", names[0])
	return nil
}

func (c *command) migrate(ctx context.Context, args []string) error {
	if _, err := c.prog.Command("migrate", "", "Apply the database migrations of the settings' databases, then exit.").Args(args, 0, 0); err != nil {
		return err
	}
	cfg, err := c.loadWithoutKeys()
	if err != nil {
		return err
	}
	a := &App{Config: cfg, Logger: NewLogger(cfg.Log, false, c.io.Err)}
	defer a.Close()
	urls := []string{cfg.StorageURL("")}
	if cfg.Backend == "sql" {
		var opts sqlbackend.Options
		if err := cfg.Source.DecodeSection("identity_backend.options", cfg.IdentityBackend.Options, &opts); err != nil {
			return err
		}
		if opts.URL != "" {
			urls = []string{opts.URL, cfg.StorageURL(opts.URL)}
		}
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if seen[u] {
			continue
		}
		seen[u] = true
		if _, err := a.openDB(ctx, "storage.url", u, Options{}); err != nil {
			return err
		}
		fmt.Fprintf(c.io.Out, "migrated %s\n", sqldb.Scrub(u))
	}
	return nil
}

func (c *command) healthcheck(ctx context.Context, args []string) error {
	fs := c.prog.Command("healthcheck", "[--url URL]",
		"Exit 0 if the local server's /health is green, 1 otherwise: a container health probe.")
	url := fs.String("url", "", "the /health URL (default: from the settings' host and port)")
	if _, err := fs.Args(args, 0, 0); err != nil {
		return err
	}
	if *url == "" {
		path := c.settingsPath
		if path == "" {
			path = FindSettings()
		}
		cfg, err := LoadForAdmin(path)
		if err != nil {
			return err
		}
		*url = cmdline.LocalURL(cfg.Server.Host, cfg.Server.Port, "/health")
	}
	return cmdline.Healthcheck(ctx, *url, c.io.Out)
}
