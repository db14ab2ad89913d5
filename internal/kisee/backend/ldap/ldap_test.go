package ldap_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/kisee/backend/ldap"
	"github.com/kisee-pasee/suite/internal/settings"
)

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// options are the settings of a backend on s, over plain ldap:// (fine on
// the loopback interface).
func (s *slapd) options() ldap.Options {
	return ldap.Options{
		URL: s.URL, BindDN: serviceDN, BindPassword: servicePW, BaseDN: peopleDN,
		Timeout: settings.Duration(5 * time.Second),
	}
}

func open(t *testing.T, o ldap.Options) (*ldap.Backend, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	b, err := ldap.Open(context.Background(), o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, logs
}

var alice, bob = backendtest.Users[0], backendtest.Users[1]

func TestConformance(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	t.Logf("slapd started and answered in %v", s.Started)
	backendtest.Run(t, func(t *testing.T) kisee.Backend {
		b, _ := open(t, s.options())
		return b
	})
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	b, err := ldap.Open(context.Background(), ldap.Options{URL: "ldap://127.0.0.1:1", BaseDN: peopleDN, Timeout: settings.Duration(time.Second)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var kb kisee.Backend = b
	if _, ok := kb.(kisee.Registerer); ok {
		t.Error("ldap backend claims to register users")
	}
	if _, ok := kb.(kisee.PasswordSetter); ok {
		t.Error("ldap backend claims to set passwords")
	}
}

// Over TLS (ldaps:// and StartTLS) the server's certificate is checked
// against ca_cert_file: the right CA works, another is refused before
// any password is sent.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	ctx := context.Background()
	for name, o := range map[string]ldap.Options{
		"ldaps":    {URL: s.LDAPSURL},
		"starttls": {URL: s.URL, StartTLS: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o.BindDN, o.BindPassword, o.BaseDN = serviceDN, servicePW, peopleDN
			o.Timeout = settings.Duration(5 * time.Second)

			o.CACertFile = s.CAFile
			good, logs := open(t, o)
			if _, err := good.Identify(ctx, alice.Username, alice.Password); err != nil {
				t.Fatalf("right CA: %v", err)
			}
			if _, err := good.Identify(ctx, alice.Username, "wrong"); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatalf("right CA, wrong password: %v", err)
			}
			if strings.Contains(logs.String(), "WARN") {
				t.Errorf("warnings with a verified TLS connection:\n%s", logs)
			}

			o.CACertFile = s.OtherCA
			bad, logs := open(t, o)
			if !strings.Contains(logs.String(), "certificate") {
				t.Errorf("the refused certificate is not logged at start:\n%s", logs)
			}
			_, err := bad.Identify(ctx, alice.Username, alice.Password)
			if !errors.Is(err, kisee.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("wrong CA: err = %v, want ErrUnavailable about the certificate", err)
			}
			if err := bad.Health(ctx); err == nil {
				t.Fatal("wrong CA: healthy")
			}
			if strings.Contains(err.Error()+logs.String(), servicePW) {
				t.Fatal("service password in errors or logs")
			}

			o.CACertFile, o.InsecureSkipVerify = s.OtherCA, true
			insecure, logs := open(t, o)
			if _, err := insecure.Identify(ctx, alice.Username, alice.Password); err != nil {
				t.Fatalf("insecure_skip_verify: %v", err)
			}
			if !strings.Contains(logs.String(), "insecure_skip_verify") {
				t.Error("insecure_skip_verify is not warned about")
			}
		})
	}
}

// Filter metacharacters in a login are escaped: they match no one.
func TestFilterInjection(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	b, _ := open(t, s.options())
	ctx := context.Background()
	for _, login := range []string{"*)(uid=*", "*", "alic*", "alice)(|(uid=*", "*)(|(objectClass=*", `alice\2a`, "(uid=alice)"} {
		for _, pw := range []string{alice.Password, "x", "*"} {
			if _, err := b.Identify(ctx, login, pw); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Errorf("Identify(%q, %q): err = %v, want ErrInvalidCredentials", login, pw, err)
			}
		}
		if _, err := b.FindByUsername(ctx, login); !errors.Is(err, kisee.ErrUserNotFound) {
			t.Errorf("FindByUsername(%q): %v", login, err)
		}
		if _, err := b.FindByEmail(ctx, login+"@example.com"); !errors.Is(err, kisee.ErrUserNotFound) {
			t.Errorf("FindByEmail(%q): %v", login, err)
		}
	}
}

// An empty password is refused without talking to the directory at all:
// LDAP would take it for an anonymous bind, which succeeds.
func TestEmptyPasswordNeverBinds(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	p := startProxy(t, hostPort(s.URL))
	o := s.options()
	o.URL = "ldap://" + p.Addr
	b, _ := open(t, o)
	_, before := p.Stats()
	if _, err := b.Identify(context.Background(), alice.Username, ""); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Fatalf("empty password: %v", err)
	}
	if _, after := p.Stats(); after != before {
		t.Fatalf("an empty password opened %d connection(s)", after-before)
	}
	// The directory itself would have let the unauthenticated bind through.
	if _, err := b.Identify(context.Background(), alice.Username, alice.Password); err != nil {
		t.Fatal(err)
	}
}

// Attributes become claims: single values as strings, several as lists,
// attribute names without regard to case; missing ones are left out.
func TestClaimAttributes(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	o := s.options()
	o.ClaimAttributes = map[string]string{"department": "ou", "numbers": "DepartmentNumber", "title": "title"}
	b, _ := open(t, o)
	ctx := context.Background()
	u, err := b.Identify(ctx, alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"department": "research", "numbers": []string{"42", "7"}}
	if !reflect.DeepEqual(u.Claims, want) {
		t.Errorf("claims = %#v, want %#v", u.Claims, want)
	}
	if u.ID != "alice" || u.Username != "alice" || u.Email != alice.Email {
		t.Errorf("user = %+v", u)
	}
	found, err := b.FindByEmail(ctx, bob.Email)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found.Claims, map[string]any{"department": "engineering"}) {
		t.Errorf("bob's claims = %#v", found.Claims)
	}
	for _, claim := range []string{"sub", "exp", "iss", "email"} {
		o.ClaimAttributes = map[string]string{claim: "ou"}
		if _, err := ldap.Open(ctx, o, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), claim) {
			t.Errorf("claim %q from an attribute: err = %v", claim, err)
		}
	}
}

// The directory's spelling of the username is the subject, whatever the
// case the user typed.
func TestUsernameIsTheDirectorys(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	b, _ := open(t, s.options())
	u, err := b.Identify(context.Background(), "ALICE", alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "alice" || u.Username != "alice" {
		t.Errorf("ALICE identified as %+v", u)
	}
}

// A filter that matches several entries refuses the login, and says so.
func TestAmbiguousFilter(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	o := s.options()
	o.UserFilter = "(|(uid=%s)(sn=%s))"
	b, logs := open(t, o)
	ctx := context.Background()
	if _, err := b.Identify(ctx, "Twin", "twin password"); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Fatalf("ambiguous: %v", err)
	}
	if !strings.Contains(logs.String(), "several entries") {
		t.Errorf("ambiguity not logged:\n%s", logs)
	}
	if _, err := b.Identify(ctx, "twin1", "twin password"); err != nil {
		t.Errorf("twin1 by uid: %v", err)
	}
	if _, err := b.FindByUsername(ctx, "Twin"); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Errorf("ambiguous find: %v", err)
	}
}

// A user's bind never leaves a pooled connection bound as that user (the
// ACL lets a user read only their own entry), connections are bounded by
// pool_size, and a pooled connection the directory dropped is replaced.
func TestConnectionPool(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	p := startProxy(t, hostPort(s.URL))
	o := s.options()
	o.URL = "ldap://" + p.Addr
	o.PoolSize = 1
	b, _ := open(t, o)
	ctx := context.Background()
	if _, err := b.Identify(ctx, alice.Username, alice.Password); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FindByUsername(ctx, bob.Username); err != nil {
		t.Fatalf("after alice's bind, the service cannot see bob: %v", err)
	}

	p.CutAll()
	if _, err := b.Identify(ctx, bob.Username, bob.Password); err != nil {
		t.Fatalf("after the directory dropped the pooled connection: %v", err)
	}

	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			u := backendtest.Users[i%2]
			if _, err := b.Identify(ctx, u.Username, u.Password); err != nil {
				t.Errorf("concurrent %s: %v", u.Username, err)
			}
		})
	}
	wg.Wait()
	// One pooled search connection and one user bind at a time (2), plus
	// the proxy's lag in seeing a closed connection go: 20 logins would
	// open about 20 without the bound.
	if maxOpen, _ := p.Stats(); maxOpen > 4 {
		t.Errorf("%d connections open at once with pool_size 1", maxOpen)
	}
}

// A service account the directory refuses does not stop Kisee; logins
// answer "unavailable" (not "wrong password"), and the password is never
// written anywhere.
func TestWrongServicePassword(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	o := s.options()
	o.BindPassword = "not the service password"
	b, logs := open(t, o)
	_, err := b.Identify(context.Background(), alice.Username, alice.Password)
	if !errors.Is(err, kisee.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(logs.String(), "service bind") {
		t.Errorf("the refused service bind is not logged:\n%s", logs)
	}
	if strings.Contains(err.Error()+logs.String(), o.BindPassword) {
		t.Error("the service password leaks")
	}

	// The same account, its password read from a file.
	o.BindPassword = ""
	o.BindPasswordFile = filepath.Join(t.TempDir(), "bind_password")
	if err := os.WriteFile(o.BindPasswordFile, []byte(servicePW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, _ := open(t, o)
	if _, err := fromFile.Identify(context.Background(), alice.Username, alice.Password); err != nil {
		t.Fatalf("bind_password_file: %v", err)
	}
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

// A directory that accepts connections but never answers costs a login
// at most the timeout (or the request's deadline), and answers
// ErrUnavailable.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	for name, url := range map[string]string{
		"ldap":  "ldap://" + silentListener(t),
		"ldaps": "ldaps://" + silentListener(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := ldap.Options{URL: url, BindDN: serviceDN, BindPassword: servicePW, BaseDN: peopleDN, Timeout: settings.Duration(timeout)}
			start := time.Now()
			b, _ := open(t, o)
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("Open took %v", d)
			}
			for _, limit := range []time.Duration{0, 100 * time.Millisecond} {
				ctx := context.Background()
				want := timeout
				if limit > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, limit)
					defer cancel()
					want = limit
				}
				start := time.Now()
				_, err := b.Identify(ctx, alice.Username, alice.Password)
				d := time.Since(start)
				if !errors.Is(err, kisee.ErrUnavailable) {
					t.Errorf("deadline %v: err = %v, want ErrUnavailable", limit, err)
				}
				if d > want+time.Second {
					t.Errorf("deadline %v: answered after %v", limit, d)
				}
			}
			start = time.Now()
			if err := b.Health(context.Background()); err == nil {
				t.Error("a silent directory is healthy")
			}
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("Health took %v", d)
			}
		})
	}
}

// An unknown user is refused in about the time a wrong password takes.
func TestUnknownUserCostsLikeAWrongPassword(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	b, _ := open(t, s.options())
	ctx := context.Background()
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 5 {
			start := time.Now()
			if _, err := b.Identify(ctx, user, "wrong password"); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatalf("%s: %v", user, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := fastest(alice.Username), fastest("mallory")
	t.Logf("wrong password: %v, unknown user: %v", known, unknown)
	if unknown < known/2 {
		t.Errorf("unknown user refused in %v, wrong password in %v", unknown, known)
	}
}

func TestOpenRefusesBadSettings(t *testing.T) {
	t.Parallel()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := ldap.Options{URL: "ldap://127.0.0.1:1", BaseDN: peopleDN}
	for name, tc := range map[string]struct {
		edit func(*ldap.Options)
		want string
	}{
		"no url":              {func(o *ldap.Options) { o.URL = "" }, "url"},
		"http url":            {func(o *ldap.Options) { o.URL = "http://ldap.example.com" }, "scheme"},
		"no host":             {func(o *ldap.Options) { o.URL = "ldap://" }, "no host"},
		"starttls on ldaps":   {func(o *ldap.Options) { o.URL, o.StartTLS = "ldaps://127.0.0.1:1", true }, "start_tls"},
		"dn without password": {func(o *ldap.Options) { o.BindDN = serviceDN }, "without bind_password"},
		"password without dn": {func(o *ldap.Options) { o.BindPassword = "x" }, "without bind_dn"},
		"missing pw file":     {func(o *ldap.Options) { o.BindDN, o.BindPasswordFile = serviceDN, "/nonexistent/pw" }, "bind_password_file"},
		"no base dn":          {func(o *ldap.Options) { o.BaseDN = "" }, "base_dn is required"},
		"bad base dn":         {func(o *ldap.Options) { o.BaseDN = "not a dn" }, "base_dn"},
		"filter without %s":   {func(o *ldap.Options) { o.UserFilter = "(uid=alice)" }, "user_filter"},
		"broken filter":       {func(o *ldap.Options) { o.EmailFilter = "(mail=%s" }, "email_filter"},
		"bad CA file":         {func(o *ldap.Options) { o.CACertFile = ca }, "no PEM certificate"},
		"missing CA file":     {func(o *ldap.Options) { o.CACertFile = "/nonexistent/ca.pem" }, "ca_cert_file"},
		"empty claim attr":    {func(o *ldap.Options) { o.ClaimAttributes = map[string]string{"dept": ""} }, "dept"},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			_, err := ldap.Open(context.Background(), o, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// configs/kisee-ldap.toml decodes strictly into Options, and its filters,
// attributes and claims work on a directory laid out as it describes.
func TestExampleSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "..", "..", "configs", "kisee-ldap.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		IdentityBackend struct {
			Class   string         `toml:"class"`
			Options map[string]any `toml:"options"`
		} `toml:"identity_backend"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.IdentityBackend.Class != "ldap" {
		t.Fatalf("class = %q", doc.IdentityBackend.Class)
	}
	src, err := settings.Parse(path, data, "")
	if err != nil {
		t.Fatal(err)
	}
	var o ldap.Options
	if err := src.DecodeSection("identity_backend.options", doc.IdentityBackend.Options, &o); err != nil {
		t.Fatal(err)
	}
	if o.Timeout.D() != 5*time.Second || o.PoolSize != 4 || o.ClaimAttributes["department"] != "ou" {
		t.Fatalf("options = %+v", o)
	}
	s := startSlapd(t)
	// The test directory's address, CA and service password; the rest as
	// in the file.
	o.URL, o.CACertFile, o.BindPassword = s.LDAPSURL, s.CAFile, servicePW
	backendtest.Run(t, func(t *testing.T) kisee.Backend {
		b, _ := open(t, o)
		return b
	})
	b, _ := open(t, o)
	u, err := b.Identify(context.Background(), alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	if u.Claims["department"] != "research" {
		t.Errorf("claims = %v", u.Claims)
	}
}
