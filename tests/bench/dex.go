package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"
)

// Dex is a Dex server (github.com/dexidp/dex) run on the same PostgreSQL
// as Pasee, for the comparison issue 17 asks for: its token endpoint's
// refresh_token grant next to Pasee's refresh, in the same run. Dex runs on
// its defaults (RS256 keys it generates and rotates in its store, refresh
// tokens rotated on use, a database connection pool of 5); its users are
// static passwords, logged in once each with the password grant.
//
// Dex is not a dependency of this repository: the module proxy does not
// serve it, so it is given as a binary built from its source (-dex).
type Dex struct {
	Proc *Proc
	// tokenURL is the token endpoint; basic the bench client's
	// Authorization header (client_secret_basic).
	tokenURL, basic string
	client          *http.Client
}

// dexUser is the email of Dex user i (one per virtual user: Dex keeps one
// refresh token per user and client, so users cannot share one).
func dexUser(i int) string { return fmt.Sprintf("user%d@bench.example", i) }

// StartDex starts the Dex binary e.Dex on a fresh PostgreSQL database with
// users static users whose password is benchPassword, and waits until it
// is healthy.
func (e *Env) StartDex(ctx context.Context, users int) (*Dex, error) {
	pg, err := pgx.ParseConfig(e.PG)
	if err != nil {
		return nil, fmt.Errorf("dex: %w", err)
	}
	db, err := e.NewDatabase(ctx)
	if err != nil {
		return nil, fmt.Errorf("dex: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// One hash for every user (they share the password); bcrypt's default
	// cost, the least Dex accepts.
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	config, err := dexConfig(base+"/dex", fmt.Sprintf("127.0.0.1:%d", port), pg, db, string(hash), users)
	if err != nil {
		return nil, err
	}
	dir := e.newDir("dex")
	file := filepath.Join(dir, "dex.yaml")
	if err := os.WriteFile(file, config, 0o600); err != nil {
		return nil, err
	}
	p, err := e.startProc(ctx, &Proc{Name: "dex", URL: base, Dir: dir, Settings: file, path: e.Dex, args: []string{"serve", file}, health: "/dex/healthz"})
	if err != nil {
		return nil, err
	}
	r, _ := http.NewRequest(http.MethodPost, base, nil)
	r.SetBasicAuth(url.QueryEscape(benchClientID), url.QueryEscape(benchClientSecret))
	return &Dex{Proc: p, tokenURL: base + "/dex/token", basic: r.Header.Get("Authorization"), client: &http.Client{}}, nil
}

// dexConfig is Dex's configuration: YAML, written as JSON (which YAML
// reads), for the issuer, listening on addr, storing in database db of the
// PostgreSQL server of pg.
func dexConfig(issuer, addr string, pg *pgx.ConnConfig, db, hash string, users int) ([]byte, error) {
	type password struct {
		Email    string `json:"email"`
		Hash     string `json:"hash"`
		Username string `json:"username"`
		UserID   string `json:"userID"`
	}
	passwords := make([]password, users)
	for i := range passwords {
		passwords[i] = password{Email: dexUser(i), Hash: hash, Username: fmt.Sprintf("user%d", i), UserID: fmt.Sprintf("bench-%d", i)}
	}
	pgc := map[string]any{"host": pg.Host, "port": pg.Port, "database": db, "user": pg.User, "ssl": map[string]string{"mode": "disable"}}
	if pg.Password != "" {
		pgc["password"] = pg.Password
	}
	return json.MarshalIndent(map[string]any{
		"issuer":  issuer,
		"storage": map[string]any{"type": "postgres", "config": pgc},
		"web":     map[string]string{"http": addr},
		"logger":  map[string]string{"level": "info", "format": "text"},
		"oauth2":  map[string]any{"passwordConnector": "local", "skipApprovalScreen": true},
		"staticClients": []map[string]any{{
			"id": benchClientID, "secret": benchClientSecret, "name": "Bench", "redirectURIs": []string{benchRedirectURI},
		}},
		"enablePasswordDB": true,
		"staticPasswords":  passwords,
	}, "", "  ")
}

// Login is Dex user i's password grant with offline_access: its first
// refresh token.
func (d *Dex) Login(ctx context.Context, i int) (string, error) {
	form := url.Values{
		"grant_type": {"password"}, "username": {dexUser(i)}, "password": {benchPassword},
		"scope": {"openid offline_access"},
	}
	body, err := postForm(ctx, d.client, d.tokenURL, d.basic, form)
	if err != nil {
		return "", fmt.Errorf("dex password grant: %w", err)
	}
	p, err := parsePair(body)
	return p.Refresh, err
}

// RefreshOn is Dex's refresh_token grant sent on w, as the refresh levels
// send Pasee's.
func (d *Dex) RefreshOn(ctx context.Context, w *Wire, refreshToken string) ([]byte, error) {
	body, err := refreshGrantOn(ctx, w, d.tokenURL, d.basic, refreshToken)
	if err != nil {
		return nil, fmt.Errorf("dex: %w", err)
	}
	return body, nil
}

// dexVersion is what `dex version` says of its version, "Dex" if nothing.
func dexVersion(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "version").Output()
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Dex Version: "); ok {
			return "Dex " + strings.TrimSpace(v)
		}
	}
	return "Dex"
}
