package app

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"text/template"
	"time"

	"github.com/kisee-pasee/suite/internal/cmdline"
	"github.com/kisee-pasee/suite/pkg/token"
)

var quickstartTemplate = template.Must(template.New("settings").Parse(`# Kisee settings, written by "kisee quickstart" on {{.Date}}.
# Reference: README.md, section "Kisee settings". Every value can be
# overridden by an environment variable: KISEE_<TABLE>_<KEY>.

[server]
host = "{{.Host}}"
port = {{.Port}}
hostname = "{{.Hostname}}"   # public base URL, used in links and emails

[identity_backend]
class = "sql"                  # sql | demo | test | htpasswd | ldap | sql-query | remote
[identity_backend.options]
url = "{{.Database}}"          # or postgres://user@host/db

[jwt]
iss = "{{.Issuer}}"
ttl = "1h"
# {{.Alg}} key, kid {{.KID}}. Keep it secret; publish only /jwks.json.
private_key = '''
{{.PrivateKey}}'''

[registration]
enabled = false
`))

type quickstartValues struct {
	Date, Host, Hostname, Database, Issuer, PrivateKey, Alg, KID string
	Port                                                         int
}

func (c *command) quickstart(args []string) error {
	f := c.prog.Command("quickstart", "[--output FILE] [--force] [FLAGS]",
		"Write a settings file with a fresh signing key; on a terminal, ask for the values not given.")
	out := f.String("output", "settings.toml", "file to write")
	hostname := f.String("hostname", "", "public base URL (default http://localhost:PORT)")
	host := f.String("host", "127.0.0.1", "address to listen on")
	port := f.Int("port", 8140, "port to listen on")
	database := f.String("database", "", "users database URL (default sqlite:kisee.db)")
	iss := f.String("iss", "", `"iss" of the tokens (default: the hostname)`)
	alg := f.String("alg", "ES256", "key algorithm: ES256, ES384, ES256K, EdDSA or RS256")
	force := f.Bool("force", false, "overwrite an existing file")
	if _, err := f.Args(args, 0, 0); err != nil {
		return err
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	interactive := cmdline.IsTerminal(c.io.In)
	in := bufio.NewReader(c.io.In)
	ask := func(name, question string, value *string) error {
		if set[name] || !interactive {
			return nil
		}
		fmt.Fprintf(c.io.Err, "%s [%s]: ", question, *value)
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, fs.ErrClosed) && line == "" {
			return nil
		}
		if line = strings.TrimSpace(line); line != "" {
			*value = line
		}
		return nil
	}
	if *hostname == "" {
		*hostname = fmt.Sprintf("http://localhost:%d", *port)
	}
	if *database == "" {
		*database = "sqlite:kisee.db"
	}
	if err := ask("hostname", "Public URL of this Kisee", hostname); err != nil {
		return err
	}
	if err := ask("database", "Users database URL", database); err != nil {
		return err
	}
	if *iss == "" {
		*iss = *hostname
	}
	a, err := token.ParseAlgorithm(*alg)
	if err != nil {
		return err
	}
	key, err := token.GenerateKey(a)
	if err != nil {
		return err
	}
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(*out, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists; use --force to overwrite it, or --output to write elsewhere", *out)
	}
	if err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	err = quickstartTemplate.Execute(file, quickstartValues{
		Date: time.Now().UTC().Format("2006-01-02"), Host: *host, Port: *port, Hostname: strings.TrimSuffix(*hostname, "/"),
		Database: *database, Issuer: *iss, PrivateKey: strings.TrimSpace(string(pemBytes)), Alg: string(a), KID: key.KeyID(),
	})
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	// The file must load: a quickstart that writes broken settings is worse than none.
	if _, err := Load(*out); err != nil {
		return fmt.Errorf("the settings written do not load: %w", err)
	}
	fmt.Fprintf(c.io.Out, "wrote %s (key %s, kid %s); start with: kisee --settings %s\n", *out, a, key.KeyID(), *out)
	return nil
}
