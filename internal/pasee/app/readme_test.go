package app

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/settings/settingstest"
)

var readme = filepath.Join("..", "..", "..", "README.md")

// Every TOML block of README's Pasee sections is what Pasee accepts: no
// unknown key, no wrong type, no invalid value, providers' settings
// included (the signing key, shown as a placeholder, is left out).
func TestREADMESettingsLoad(t *testing.T) {
	for _, b := range settingstest.TOMLBlocks(t, readme, "Pasee settings", "Logging in from a browser app (OAuth2, OIDC)") {
		t.Run(fmt.Sprintf("README.md:%d", b.Line), func(t *testing.T) {
			src, err := settings.Parse(fmt.Sprintf("README.md:%d", b.Line), []byte(settingstest.WithSecretFiles(t, b.Text)), "")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := checked(src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cfg.Providers(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// README's command list is the binary's: every command it shows exists,
// and every command of the usage is shown.
func TestREADMECommands(t *testing.T) {
	var readmeCmds []string
	for _, b := range settingstest.Blocks(t, readme, "", "Pasee") {
		readmeCmds = append(readmeCmds, settingstest.CommandsOf(b.Text, "pasee")...)
	}
	var out bytes.Buffer
	Main(context.Background(), []string{"help"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &out}, "test")
	usageCmds := settingstest.UsageCommands(out.String())
	if len(usageCmds) == 0 {
		t.Fatalf("no commands in the usage:\n%s", out.String())
	}
	for _, c := range usageCmds {
		if !slices.Contains(readmeCmds, c) {
			t.Errorf("README's Pasee command list lacks %q (it has %q)", c, readmeCmds)
		}
	}
	for _, c := range readmeCmds {
		if !slices.Contains(usageCmds, c) {
			t.Errorf("README shows `pasee %s`, which the usage does not list (%q)", c, usageCmds)
		}
	}
}
