package app

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee/backend/htpasswd"
	"github.com/kisee-pasee/suite/internal/kisee/backend/ldap"
	"github.com/kisee-pasee/suite/internal/kisee/backend/remote"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/backend/sqlquery"
	"github.com/kisee-pasee/suite/internal/kisee/backend/static"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/settings/settingstest"
)

var readme = filepath.Join("..", "..", "..", "README.md")

// Every TOML block of README's Kisee sections is what Kisee accepts: no
// unknown key, no wrong type, no invalid value, backend options included
// (the signing key, shown as a placeholder, is left out).
func TestREADMESettingsLoad(t *testing.T) {
	for _, b := range settingstest.TOMLBlocks(t, readme, "Kisee settings", "Registration and password recovery") {
		t.Run(fmt.Sprintf("README.md:%d", b.Line), func(t *testing.T) {
			src, err := settings.Parse(fmt.Sprintf("README.md:%d", b.Line), []byte(settingstest.WithSecretFiles(t, b.Text)), "")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := checked(src)
			if err != nil {
				t.Fatal(err)
			}
			opts := map[string]any{"sql": &sqlbackend.Options{}, "sql-query": &sqlquery.Options{}, "htpasswd": &htpasswd.Options{},
				"ldap": &ldap.Options{}, "remote": &remote.Options{}, "test": &static.Options{}}[cfg.Backend]
			if opts != nil {
				if err := src.DecodeSection("identity_backend.options", cfg.IdentityBackend.Options, opts); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// README's command list is the binary's: every command it shows exists,
// and every command of the usage is shown.
func TestREADMECommands(t *testing.T) {
	var readmeCmds []string
	for _, b := range settingstest.Blocks(t, readme, "", "Kisee") {
		readmeCmds = append(readmeCmds, settingstest.CommandsOf(b.Text, "kisee")...)
	}
	var out bytes.Buffer
	Main(context.Background(), []string{"help"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &out}, "test")
	usageCmds := settingstest.UsageCommands(out.String())
	if len(usageCmds) == 0 {
		t.Fatalf("no commands in the usage:\n%s", out.String())
	}
	for _, c := range usageCmds {
		if !slices.Contains(readmeCmds, c) {
			t.Errorf("README's Kisee command list lacks %q (it has %q)", c, readmeCmds)
		}
	}
	for _, c := range readmeCmds {
		if !slices.Contains(usageCmds, c) {
			t.Errorf("README shows `kisee %s`, which the usage does not list (%q)", c, usageCmds)
		}
	}
}
