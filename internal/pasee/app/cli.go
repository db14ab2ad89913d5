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
	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/web"
)

// Stdio are the streams of a command.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

const usage = `Usage: pasee [--settings-file FILE] [COMMAND]

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
  version                   print the version

Flags (anywhere on the line):
  --settings-file FILE      settings file (--settings is accepted too)
  --no-migrate              do not apply migrations at start
`

// Main runs the pasee command and returns its exit status.
func Main(ctx context.Context, args []string, stdio Stdio, version string) int {
	path, args, err := cmdline.ExtractFlag(args, "--settings-file", "--settings")
	if err != nil {
		fmt.Fprintln(stdio.Err, "pasee:", err)
		return 2
	}
	noMigrate, args := cmdline.ExtractBool(args, "--no-migrate")
	// The original CLI was `python -m pasee --append --groups staff NAME`.
	if len(args) > 0 && (args[0] == "--append" || args[0] == "--remove") {
		args[0] = strings.TrimPrefix(args[0], "--")
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	c := &command{io: stdio, version: version, settingsPath: path, noMigrate: noMigrate}
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
		err = c.migrate(ctx)
	case "keygen":
		err = c.keygen(args)
	case "healthcheck":
		err = c.healthcheck(ctx, args)
	case "version":
		fmt.Fprintln(stdio.Out, version)
	case "help", "-h", "--help":
		fmt.Fprint(stdio.Out, usage)
	default:
		fmt.Fprintf(stdio.Err, "pasee: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stdio.Err, "pasee:", err)
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
	logger := web.NewLogger("pasee", cfg.Log.Format, cfg.Log.Level, c.io.Err)
	cfg.LogSettings(logger)
	if cfg.KeyGenerated {
		logger.Info("generated a new signing key", "file", DefaultKeyFile, "kid", cfg.Keys.Current.KeyID())
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
	name := map[bool]string{true: "append", false: "remove"}[add]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.io.Err)
	groupsFlag := fs.String("groups", "", "comma-separated groups, e.g. staff,articles.writers")
	users, err := cmdline.Parse(fs, args)
	if err != nil {
		return err
	}
	groups := pasee.SplitGroups(*groupsFlag)
	if len(users) != 1 || len(groups) == 0 {
		return fmt.Errorf("usage: pasee %s --groups G1,G2 USER", name)
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
	if len(args) > 1 {
		return errors.New("usage: pasee groups [USER]")
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

func (c *command) migrate(ctx context.Context) error {
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
		cfg, err := LoadWithoutKeys(path)
		if err != nil {
			return err
		}
		*url = cmdline.LocalURL(cfg.Host, cfg.Port, "/health")
	}
	return cmdline.Healthcheck(ctx, *url, c.io.Out)
}

func (c *command) keygen(args []string) error {
	return cmdline.Keygen(args, c.io.Out, c.io.Err)
}
