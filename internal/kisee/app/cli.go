package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/internal/cmdline"
	"github.com/kisee-pasee/suite/internal/kisee"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/tokenstore"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// Stdio are the streams of a command.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

const usage = `Usage: kisee [--settings FILE] [COMMAND]

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

Flags:
  --settings FILE      settings file (anywhere on the line)
  --no-migrate         do not apply migrations at start
`

// Main runs the kisee command and returns its exit status.
func Main(ctx context.Context, args []string, io Stdio, version string) int {
	path, args, err := cmdline.ExtractFlag(args, "--settings", "--settings-file")
	if err != nil {
		fmt.Fprintln(io.Err, "kisee:", err)
		return 2
	}
	noMigrate, args := cmdline.ExtractBool(args, "--no-migrate")
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	c := &command{io: io, version: version, settingsPath: path, noMigrate: noMigrate}
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
		err = c.migrate(ctx)
	case "keygen":
		err = c.keygen(args)
	case "healthcheck":
		err = c.healthcheck(ctx, args)
	case "version":
		fmt.Fprintln(io.Out, version)
	case "help", "-h", "--help":
		fmt.Fprint(io.Out, usage)
	default:
		fmt.Fprintf(io.Err, "kisee: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(io.Err, "kisee:", err)
		return 1
	}
	return 0
}

type command struct {
	io           Stdio
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

func (c *command) serve(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", args)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	logger := NewLogger(cfg.Log, cfg.Server.Debug, c.io.Err)
	cfg.LogSettings(logger)
	if cfg.KeyGenerated {
		logger.Info("generated a new signing key", "file", cfg.KeyFile, "kid", cfg.Keys.Current.KeyID())
	}
	a, err := New(ctx, cfg, Options{Version: c.version, NoMigrate: c.noMigrate, Logger: logger})
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
	fs := flag.NewFlagSet("useradd", flag.ContinueOnError)
	fs.SetOutput(c.io.Err)
	email := fs.String("email", "", "the user's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	superuser := fs.Bool("superuser", false, "make the user a superuser")
	names, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return errors.New("usage: kisee useradd NAME [--email E] [--superuser] [--password-stdin]")
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
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(c.io.Err)
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	names, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return errors.New("usage: kisee passwd NAME [--password-stdin]")
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

func (c *command) migrate(ctx context.Context) error {
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
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(c.io.Err)
	url := fs.String("url", "", "the /health URL (default: from the settings' host and port)")
	if _, err := cmdline.Parse(fs, args); err != nil {
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

func (c *command) keygen(args []string) error {
	return cmdline.Keygen(args, c.io.Out, c.io.Err)
}
