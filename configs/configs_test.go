// Package configs_test loads every example settings file of configs/ with
// the loader of the service it is for, so that none can rot: kisee-*.toml
// with Kisee's, pasee-*.toml with Pasee's (see internal/deploytest for what
// is checked and how the secret files they name are stood in for).
package configs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/deploytest"
)

// documented are the setups the README and deploy/ point to; the glob
// below loads them and whatever else configs/ holds.
func documented() []string {
	return []string{
		"kisee-laptop.toml", "kisee-postgres.toml",
		"pasee-laptop.toml", "pasee-postgres.toml", "pasee-github.toml", "pasee-oidc-clients.toml",
	}
}

func TestEveryConfigLoads(t *testing.T) {
	files, err := filepath.Glob("*.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range documented() {
		if _, err := os.Stat(want); err != nil {
			t.Errorf("configs/%s is missing: %v", want, err)
		}
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(f, ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// An example explains itself before anything else.
			if !strings.HasPrefix(string(data), "#") {
				t.Errorf("configs/%s does not open with a comment saying what setup it is for", f)
			}
			if strings.Contains(string(data), "-----BEGIN") && !strings.Contains(string(data), "-----BEGIN PUBLIC KEY-----...") {
				t.Errorf("configs/%s holds key material; name key files with private_key_file", f)
			}
			deploytest.Check(t, f, nil)
		})
	}
}
