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
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/web"
)

// Stdio are the streams of a command.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

const usage = `Usage: pasee [--settings-file FILE] [COMMAND] [ARGS]

Commands:
  (none), serve             serve the API (default settings.toml, then /etc/pasee/settings.toml;
                            none found: embedded defaults)
  append --groups G1,G2 USER
                            add USER (full name, e.g. kisee-alice) to groups, creating missing
                            groups and their .staff; works while the server runs
  remove --groups G USER    remove USER from groups
  groups [USER]             list all groups, or USER's groups
  migrate                   apply the database migrations and exit
  healthcheck               exit 0 if the local server's /health is green [--url URL]
  keygen                    print a fresh private key [--alg ES256|ES384|ES256K|EdDSA|RS256]
  settings upgrade FILE     print FILE (an original Pasee's settings) rewritten for this Pasee
  import --from URL         copy an original Pasee's users, groups, memberships and bans into
                            the configured store (URL: postgres://... or sqlite:FILE) [--dry-run]
  version                   print the version
  help [COMMAND]            print this help, or COMMAND's (as COMMAND --help does)

Flags (anywhere on the line):
` + globalFlags

const globalFlags = `  --settings-file FILE      settings file; --settings FILE is the same
  --no-migrate              do not apply database migrations at start
  -h, --help                print the usage of the command and do nothing else
`

// Main runs the pasee command and returns its exit status: 0, 1 when the
// command failed, 2 when the command line was not understood.
func Main(ctx context.Context, args []string, stdio Stdio, version string) int {
	prog := &cmdline.Program{Name: "pasee", Usage: usage, Global: globalFlags, Out: stdio.Out, Err: stdio.Err}
	path, args, err := cmdline.ExtractFlag(args, "--settings-file", "--settings")
	if err != nil {
		return prog.Exit(prog.Usagef("%v", err), true)
	}
	noMigrate, args := cmdline.ExtractBool(args, "--no-migrate")
	// The original CLI was `python -m pasee --append --groups staff NAME`.
	if len(args) > 0 && (args[0] == "--append" || args[0] == "--remove") {
		args[0] = strings.TrimPrefix(args[0], "--")
	}
	cmd, args, named := cmdline.Command(args, "serve")
	if cmd == "help" || (!named && cmdline.WantsHelp(args)) {
		return prog.Help()
	}
	c := &command{io: stdio, prog: prog, version: version, settingsPath: path, noMigrate: noMigrate}
	switch cmd {
	case "serve":
		err = c.serve(ctx, args)
	case "append":
		err = c.membership(ctx, args, true)
	case "remove":
		err = c.membership(ctx, args, false)
	case "groups":
		err = c.groups(ctx, args)
	case "migrate":
		err = c.migrate(ctx, args)
	case "keygen":
		err = cmdline.Keygen(prog, args)
	case "healthcheck":
		err = c.healthcheck(ctx, args)
	case "settings":
		err = c.settingsCmd(args)
	case "import":
		err = c.importCmd(ctx, args)
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
	fs := c.prog.Command("serve", "", "Serve the API until SIGINT or SIGTERM. Settings: the --settings-file file, else the first of\n"+
		strings.Join(SearchPaths(), ", ")+"; none found: embedded defaults (SQLite pasee.db,\na generated key in pasee-key.pem, 127.0.0.1:8150, provider kisee at http://127.0.0.1:8140/).")
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
	logger := web.NewLogger("pasee", cfg.Log.Format, cfg.Log.Level, logs)
	cfg.LogSettings(logger)
	if cfg.KeyGenerated {
		logger.Info("generated a new signing key", "file", DefaultKeyFile, "kid", cfg.Keys.Current.KeyID())
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

// store opens the configured store and reports which providers are
// configured, for the administration commands. It needs no signing key.
func (c *command) store(ctx context.Context) (pasee.Store, func(string) bool, error) {
	path := c.settingsPath
	if path == "" {
		path = FindSettings()
	}
	cfg, err := LoadWithoutKeys(path)
	if err != nil {
		return nil, nil, err
	}
	names := map[string]bool{}
	for _, p := range cfg.IdentityProviders {
		names[p.Name] = true
	}
	st, err := OpenStore(ctx, cfg.Storage.URL, !c.noMigrate, nil)
	if err != nil {
		return nil, nil, err
	}
	return st, func(idp string) bool { return names[idp] }, nil
}

// membership adds USER to (append) or removes it from (remove) groups.
func (c *command) membership(ctx context.Context, args []string, add bool) error {
	name, summary := "append", "Add USER (a full name, e.g. kisee-alice) to groups, creating missing groups and their\n.staff. Works while the server runs."
	if !add {
		name, summary = "remove", "Remove USER (a full name, e.g. kisee-alice) from groups."
	}
	fs := c.prog.Command(name, "--groups G1,G2 USER", summary)
	groupsFlag := fs.String("groups", "", "comma-separated groups, e.g. staff,articles.writers")
	users, err := fs.Args(args, 1, 1)
	if err != nil {
		return err
	}
	groups := pasee.SplitGroups(*groupsFlag)
	if len(groups) == 0 {
		return fs.Usagef("--groups is required")
	}
	user := users[0]
	for _, g := range groups {
		if err := pasee.ValidateGroupName(g); err != nil {
			return err
		}
	}
	st, known, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := pasee.ValidateUserName(user, known); err != nil {
		var names []string
		for _, p := range c.providerNames() {
			names = append(names, p+"-"+user)
		}
		if !strings.Contains(user, "-") && len(names) > 0 {
			return fmt.Errorf("%v (did you mean %s?)", err, strings.Join(names, " or "))
		}
		return err
	}
	now := time.Now()
	for _, g := range groups {
		if add {
			if err := st.EnsureGroup(ctx, "cli", g, now); err != nil {
				return fmt.Errorf("group %s: %w", g, err)
			}
			err = st.AddMember(ctx, "cli", g, user, now)
			if errors.Is(err, pasee.ErrAlreadyMember) {
				fmt.Fprintf(c.io.Out, "%s was already in %s\n", user, g)
				continue
			}
		} else {
			err = st.RemoveMember(ctx, "cli", g, user, now)
			if errors.Is(err, pasee.ErrNotMember) {
				fmt.Fprintf(c.io.Out, "%s was not in %s\n", user, g)
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("group %s: %w", g, err)
		}
		if add {
			fmt.Fprintf(c.io.Out, "added %s to %s\n", user, g)
		} else {
			fmt.Fprintf(c.io.Out, "removed %s from %s\n", user, g)
		}
	}
	return nil
}

func (c *command) groups(ctx context.Context, args []string) error {
	args, err := c.prog.Command("groups", "[USER]", "List all groups, or the groups USER (a full name, e.g. kisee-alice) is a member of.").Args(args, 0, 1)
	if err != nil {
		return err
	}
	st, _, err := c.store(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	var groups []string
	if len(args) == 1 {
		groups, err = st.UserGroups(ctx, args[0])
	} else {
		after := ""
		for {
			page, perr := st.ListGroups(ctx, after, 200)
			if perr != nil {
				err = perr
				break
			}
			groups = append(groups, page...)
			if len(page) < 200 {
				break
			}
			after = page[len(page)-1]
		}
	}
	if err != nil {
		return err
	}
	for _, g := range groups {
		fmt.Fprintln(c.io.Out, g)
	}
	return nil
}

// providerNames lists the configured providers, for suggestions.
func (c *command) providerNames() []string {
	path := c.settingsPath
	if path == "" {
		path = FindSettings()
	}
	cfg, err := LoadWithoutKeys(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range cfg.IdentityProviders {
		out = append(out, p.Name)
	}
	return out
}

func (c *command) migrate(ctx context.Context, args []string) error {
	if _, err := c.prog.Command("migrate", "", "Apply the database migrations of the store, then exit.").Args(args, 0, 0); err != nil {
		return err
	}
	path := c.settingsPath
	if path == "" {
		path = FindSettings()
	}
	cfg, err := LoadWithoutKeys(path)
	if err != nil {
		return err
	}
	st, err := OpenStore(ctx, cfg.Storage.URL, true, web.NewLogger("pasee", cfg.Log.Format, cfg.Log.Level, c.io.Err))
	if err != nil {
		return err
	}
	st.Close()
	fmt.Fprintln(c.io.Out, "migrated the store")
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
		cfg, err := LoadWithoutKeys(path)
		if err != nil {
			return err
		}
		*url = cmdline.LocalURL(cfg.Host, cfg.Port, "/health")
	}
	return cmdline.Healthcheck(ctx, *url, c.io.Out)
}
