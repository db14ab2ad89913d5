// Package ldap is the "ldap" backend: users of an LDAP directory
// (OpenLDAP, 389-DS, Active Directory...), identified by search-then-bind.
// A service account searches the user's entry by a configurable filter;
// the password is then checked by binding as that entry, on a connection
// of its own that is closed right after. Attributes of the entry can
// become claims of the identity token.
//
// The directory is the authority on passwords, so the backend implements
// kisee.Backend, kisee.UserFinder and kisee.HealthChecker, but neither
// registration nor password changes.
//
// Timing: for an unknown user there is no entry to bind as, so no hash for
// the directory to compute. The backend keeps a moving average of how long
// a user's bind takes (connection, TLS, bind) and waits that long before
// refusing an unknown user, so that the answer time does not tell whether
// an account exists. Until the first bind there is nothing to imitate.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Options are the [identity_backend.options] of the ldap backend.
type Options struct {
	// URL of the directory: "ldaps://ldap.example.com" (TLS from the first
	// byte, port 636) or "ldap://ldap.example.com" (port 389, with
	// StartTLS unless on the loopback interface).
	URL string `toml:"url"`
	// StartTLS upgrades an ldap:// connection to TLS before anything,
	// service password included, is sent.
	StartTLS bool `toml:"start_tls"`
	// InsecureSkipVerify disables the verification of the server's
	// certificate. FOR TESTS ONLY: anyone on the path can then read every
	// password. Use CACertFile for a private CA instead.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
	// CACertFile is a PEM file of the CA certificates that sign the
	// server's certificate; when set, only they are trusted (not the
	// system's). Default: the system's trusted CAs.
	CACertFile string `toml:"ca_cert_file"`
	// BindDN and BindPassword are the service account that searches users.
	// Empty BindDN: anonymous searches, if the directory allows them.
	BindDN       string `toml:"bind_dn"`
	BindPassword string `toml:"bind_password"`
	// BindPasswordFile names a file holding BindPassword (a mounted secret).
	BindPasswordFile string `toml:"bind_password_file"`
	// BaseDN is where users are searched (whole subtree).
	BaseDN string `toml:"base_dn"`
	// UserFilter finds a user by login; each %s becomes the login,
	// escaped for LDAP filters. Default "(uid=%s)"; Active Directory:
	// "(&(objectClass=user)(sAMAccountName=%s))".
	UserFilter string `toml:"user_filter"`
	// EmailFilter finds a user by email. Default "(mail=%s)".
	EmailFilter string `toml:"email_filter"`
	// UsernameAttribute holds the canonical username, which becomes the
	// token's subject. Default "uid".
	UsernameAttribute string `toml:"username_attribute"`
	// EmailAttribute holds the email address. Default "mail".
	EmailAttribute string `toml:"email_attribute"`
	// ClaimAttributes maps claim names to attributes copied into the
	// identity token: { department = "ou" }. A multi-valued attribute
	// becomes a list.
	ClaimAttributes map[string]string `toml:"claim_attributes"`
	// Timeout bounds each step with the directory: connecting, TLS, each
	// request. Default 5s.
	Timeout settings.Duration `toml:"timeout"`
	// PoolSize is how many service connections are kept for searches, and
	// how many user binds may run at once. Default 4.
	PoolSize int `toml:"pool_size"`
}

// Defaults of Options.
const (
	DefaultUserFilter        = "(uid=%s)"
	DefaultEmailFilter       = "(mail=%s)"
	DefaultUsernameAttribute = "uid"
	DefaultEmailAttribute    = "mail"
	DefaultTimeout           = 5 * time.Second
	DefaultPoolSize          = 4
)

// Backend identifies users of an LDAP directory. It implements
// kisee.Backend, kisee.UserFinder and kisee.HealthChecker.
type Backend struct {
	o       Options // with defaults applied
	addr    string  // host:port
	ldaps   bool
	tls     *tls.Config
	timeout time.Duration
	attrs   []string // attributes to fetch
	logger  *slog.Logger

	searchSlots chan struct{} // held while a pooled connection is in use
	bindSlots   chan struct{} // held during a user bind

	mu     sync.Mutex
	idle   []*goldap.Conn // service-bound connections, ready for searches
	closed bool

	bindNanos atomic.Int64 // moving average of a user bind's duration
}

var (
	_ kisee.Backend       = (*Backend)(nil)
	_ kisee.UserFinder    = (*Backend)(nil)
	_ kisee.HealthChecker = (*Backend)(nil)
)

// Open checks o and returns the backend. It tries the directory once and
// logs a warning if it does not answer (or refuses the service account):
// Kisee starts anyway, and logins answer "unavailable" until it does.
func Open(ctx context.Context, o Options, logger *slog.Logger) (*Backend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	b, err := newBackend(o, logger.With("backend", "ldap"))
	if err != nil {
		return nil, err
	}
	if b.o.InsecureSkipVerify {
		b.logger.WarnContext(ctx, "ldap: insecure_skip_verify is set: the directory's certificate is not checked, passwords can be intercepted (tests only)")
	}
	if !b.ldaps && !b.o.StartTLS && !isLoopback(b.addr) {
		b.logger.WarnContext(ctx, "ldap: connection without TLS: passwords cross the network in clear; use ldaps:// or start_tls = true", "url", b.o.URL)
	}
	if err := b.Health(ctx); err != nil {
		b.logger.WarnContext(ctx, "ldap: directory not usable at start; logins fail until it is", "error", err)
	}
	return b, nil
}

func newBackend(o Options, logger *slog.Logger) (*Backend, error) {
	u, err := url.Parse(o.URL)
	if err != nil || o.URL == "" {
		return nil, fmt.Errorf("ldap: url %q: want ldaps://host[:port] or ldap://host[:port]", o.URL)
	}
	b := &Backend{logger: logger}
	host := u.Hostname()
	port := u.Port()
	switch u.Scheme {
	case "ldaps":
		b.ldaps = true
		if port == "" {
			port = goldap.DefaultLdapsPort
		}
		if o.StartTLS {
			return nil, errors.New("ldap: start_tls is for ldap:// URLs; an ldaps:// connection is encrypted already")
		}
	case "ldap":
		if port == "" {
			port = goldap.DefaultLdapPort
		}
	default:
		return nil, fmt.Errorf("ldap: url %q: the scheme must be ldaps:// or ldap://", o.URL)
	}
	if host == "" {
		return nil, fmt.Errorf("ldap: url %q has no host", o.URL)
	}
	b.addr = net.JoinHostPort(host, port)

	if o.BindPassword == "" && o.BindPasswordFile != "" {
		data, err := os.ReadFile(o.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: bind_password_file: %w", err)
		}
		o.BindPassword = strings.TrimRight(string(data), "\r\n")
	}
	switch {
	case o.BindDN != "" && o.BindPassword == "":
		// An empty password would be an unauthenticated bind: anonymous,
		// whatever the DN says.
		return nil, errors.New("ldap: bind_dn is set without bind_password (or bind_password_file)")
	case o.BindDN == "" && o.BindPassword != "":
		return nil, errors.New("ldap: bind_password is set without bind_dn")
	}
	if o.BaseDN == "" {
		return nil, errors.New("ldap: base_dn is required (where users are searched, e.g. ou=people,dc=example,dc=com)")
	}
	if _, err := goldap.ParseDN(o.BaseDN); err != nil {
		return nil, fmt.Errorf("ldap: base_dn %q: %w", o.BaseDN, err)
	}
	o.UserFilter = cmpOr(o.UserFilter, DefaultUserFilter)
	o.EmailFilter = cmpOr(o.EmailFilter, DefaultEmailFilter)
	for name, f := range map[string]string{"user_filter": o.UserFilter, "email_filter": o.EmailFilter} {
		if !strings.Contains(f, "%s") {
			return nil, fmt.Errorf("ldap: %s %q must contain %%s where the value goes", name, f)
		}
		if _, err := goldap.CompileFilter(strings.ReplaceAll(f, "%s", "x")); err != nil {
			return nil, fmt.Errorf("ldap: %s %q: %w", name, f, err)
		}
	}
	o.UsernameAttribute = cmpOr(o.UsernameAttribute, DefaultUsernameAttribute)
	o.EmailAttribute = cmpOr(o.EmailAttribute, DefaultEmailAttribute)
	b.attrs = []string{o.UsernameAttribute, o.EmailAttribute}
	for claim, attr := range o.ClaimAttributes {
		if token.IsRegistered(claim) || claim == "email" || claim == "" {
			return nil, fmt.Errorf("ldap: claim_attributes: %q is a claim Kisee sets itself", claim)
		}
		if attr == "" {
			return nil, fmt.Errorf("ldap: claim_attributes: no attribute for claim %q", claim)
		}
		b.attrs = append(b.attrs, attr)
	}
	b.timeout = o.Timeout.Or(DefaultTimeout)
	if o.PoolSize <= 0 {
		o.PoolSize = DefaultPoolSize
	}
	b.searchSlots = make(chan struct{}, o.PoolSize)
	b.bindSlots = make(chan struct{}, o.PoolSize)

	b.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CACertFile != "" {
		pem, err := os.ReadFile(o.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("ldap: ca_cert_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap: ca_cert_file %s: no PEM certificate in it", o.CACertFile)
		}
		b.tls.RootCAs = pool
	}
	b.o = o
	return b, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes the pooled connections. Later calls fail.
func (b *Backend) Close() error {
	b.mu.Lock()
	idle := b.idle
	b.idle, b.closed = nil, true
	b.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
	return nil
}

var errClosed = errors.New("ldap backend closed")

// dial connects to the directory (TLS, StartTLS), within the timeout.
func (b *Backend) dial(ctx context.Context) (*goldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, unavailable("connect", err)
	}
	// Until the setup is over, nothing may take longer than the timeout;
	// go-ldap's own timeout covers requests only, not TLS handshakes.
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	var c *goldap.Conn
	if b.ldaps {
		tc := tls.Client(raw, b.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, unavailable("TLS", err)
		}
		c = goldap.NewConn(tc, true)
	} else {
		c = goldap.NewConn(raw, false)
	}
	c.Start()
	c.SetTimeout(b.timeout)
	if b.o.StartTLS {
		if err := c.StartTLS(b.tls); err != nil {
			c.Close()
			return nil, unavailable("StartTLS", err)
		}
	}
	_ = raw.SetDeadline(time.Time{})
	return c, nil
}

// unavailable wraps err, a failure to talk to the directory.
func unavailable(step string, err error) error {
	return fmt.Errorf("%w: ldap %s: %v", kisee.ErrUnavailable, step, err)
}

// do runs op on c, closing c if ctx ends first (go-ldap requests take no
// context). It reports whether c may still be used.
func do(ctx context.Context, c *goldap.Conn, op func() error) (good bool, err error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = op()
	if !stop() {
		return false, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return !c.IsClosing() && !goldap.IsErrorWithCode(err, goldap.ErrorNetwork), err
}

// get returns a service-bound connection from the pool, or a new one.
func (b *Backend) get(ctx context.Context) (c *goldap.Conn, reused bool, err error) {
	select {
	case b.searchSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, unavailable("waiting for a connection", ctx.Err())
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.searchSlots
		return nil, false, errClosed
	}
	for len(b.idle) > 0 && c == nil {
		c = b.idle[len(b.idle)-1]
		b.idle = b.idle[:len(b.idle)-1]
		if c.IsClosing() {
			c = nil
		}
	}
	b.mu.Unlock()
	if c != nil {
		return c, true, nil
	}
	c, err = b.dial(ctx)
	if err == nil && b.o.BindDN != "" {
		var ok bool
		if ok, err = do(ctx, c, func() error { return c.Bind(b.o.BindDN, b.o.BindPassword) }); err != nil {
			if ok {
				c.Close()
			}
			// The error names the DN, never the password.
			err = fmt.Errorf("%w: ldap: service bind as %q: %v", kisee.ErrUnavailable, b.o.BindDN, err)
		}
	}
	if err != nil {
		<-b.searchSlots
		return nil, false, err
	}
	return c, false, nil
}

// put returns c to the pool if it is still good, and frees its slot.
func (b *Backend) put(c *goldap.Conn, good bool) {
	defer func() { <-b.searchSlots }()
	b.mu.Lock()
	if good && !b.closed && !c.IsClosing() {
		b.idle = append(b.idle, c)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	c.Close()
}

// search runs a subtree search under BaseDN for filter, asking for at
// most two entries: one is an answer, two an ambiguity.
func (b *Backend) search(ctx context.Context, filter string) ([]*goldap.Entry, error) {
	req := goldap.NewSearchRequest(b.o.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, int(math.Ceil(b.timeout.Seconds())), false, filter, b.attrs, nil)
	for attempt := 0; ; attempt++ {
		c, reused, err := b.get(ctx)
		if err != nil {
			return nil, err
		}
		var res *goldap.SearchResult
		good, err := do(ctx, c, func() error {
			var err error
			res, err = c.Search(req)
			return err
		})
		b.put(c, good)
		switch {
		case err == nil, goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
			return res.Entries, nil
		case goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject):
			return nil, fmt.Errorf("ldap: search: base_dn %q does not exist, or the service account cannot read it: %w", b.o.BaseDN, err)
		case !good && reused && attempt == 0 && ctx.Err() == nil:
			continue // the directory closed an idle connection: once more on a fresh one
		case !good, isUnavailableCode(err):
			return nil, unavailable("search", err)
		}
		return nil, fmt.Errorf("ldap: search %s: %w", filter, err)
	}
}

func isUnavailableCode(err error) bool {
	for _, code := range []uint16{goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.LDAPResultTimeLimitExceeded,
		goldap.LDAPResultAdminLimitExceeded, goldap.LDAPResultOther, goldap.ErrorNetwork} {
		if goldap.IsErrorWithCode(err, code) {
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// find returns the only entry matching filter (with value escaped), nil
// if none matches, and logs an ambiguity.
func (b *Backend) find(ctx context.Context, filter, value string) (*goldap.Entry, error) {
	f := strings.ReplaceAll(filter, "%s", goldap.EscapeFilter(value))
	entries, err := b.search(ctx, f)
	if err != nil {
		return nil, err
	}
	switch len(entries) {
	case 0:
		return nil, nil
	case 1:
		return entries[0], nil
	}
	b.logger.ErrorContext(ctx, "ldap: the filter matches several entries; refusing (make it match one entry per user)", "filter", f)
	return nil, nil
}

// CanonicalName implements kisee.CanonicalNamer: uid and the attributes
// of usual user filters match without case and with insignificant spaces
// ignored (caseIgnoreMatch), so "ALICE", " alice" and "alice" are one
// account.
func (b *Backend) CanonicalName(username string) string {
	return strings.ToLower(strings.Join(strings.Fields(username), " "))
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	// An empty password must never reach a bind: LDAP treats it as an
	// unauthenticated bind, which "succeeds" on most servers.
	// A password beyond kisee.MaxPasswordBytes is refused before it costs
	// the directory a bind.
	if pw == "" || len(pw) > kisee.MaxPasswordBytes || !kisee.PlausibleUsername(username) {
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	entry, err := b.find(ctx, b.o.UserFilter, username)
	if err != nil {
		return kisee.User{}, fmt.Errorf("identify: %w", err)
	}
	if entry == nil {
		b.imitateBind(ctx)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	if err := b.bindAs(ctx, entry.DN, pw); err != nil {
		return kisee.User{}, err
	}
	return b.user(entry, username), nil
}

// bindAs checks pw by binding as dn on a connection of its own, closed
// afterwards: a connection bound as a user never serves anything else.
func (b *Backend) bindAs(ctx context.Context, dn, pw string) error {
	select {
	case b.bindSlots <- struct{}{}:
	case <-ctx.Done():
		return unavailable("waiting for a connection", ctx.Err())
	}
	defer func() { <-b.bindSlots }()
	start := time.Now()
	c, err := b.dial(ctx)
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	defer c.Close()
	_, err = do(ctx, c, func() error { return c.Bind(dn, pw) })
	switch {
	case err == nil:
		b.recordBind(time.Since(start))
		return nil
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
		b.recordBind(time.Since(start))
		return kisee.ErrInvalidCredentials
	case goldap.IsErrorWithCode(err, goldap.LDAPResultUnwillingToPerform), goldap.IsErrorWithCode(err, goldap.LDAPResultInappropriateAuthentication):
		// Disabled or locked accounts, on some directories.
		b.logger.InfoContext(ctx, "ldap: the directory refused the bind", "dn", dn, "error", err)
		return kisee.ErrInvalidCredentials
	case isUnavailableCode(err):
		return unavailable("bind", err)
	}
	return fmt.Errorf("identify: ldap bind: %w", err)
}

// recordBind folds d into the moving average of user binds (weight 1/8).
func (b *Backend) recordBind(d time.Duration) {
	for {
		old := b.bindNanos.Load()
		next := int64(d)
		if old != 0 {
			next = old + (int64(d)-old)/8
		}
		if b.bindNanos.CompareAndSwap(old, next) {
			return
		}
	}
}

// imitateBind waits about as long as a user bind takes.
func (b *Backend) imitateBind(ctx context.Context) {
	d := time.Duration(b.bindNanos.Load())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// user builds the user of entry; login is the name it was found by.
func (b *Backend) user(entry *goldap.Entry, login string) kisee.User {
	name := entry.GetEqualFoldAttributeValue(b.o.UsernameAttribute)
	if name == "" {
		name = login
	}
	u := kisee.User{ID: name, Username: name, Email: entry.GetEqualFoldAttributeValue(b.o.EmailAttribute)}
	for claim, attr := range b.o.ClaimAttributes {
		switch vals := entry.GetEqualFoldAttributeValues(attr); len(vals) {
		case 0:
		case 1:
			u.Claims = setClaim(u.Claims, claim, vals[0])
		default:
			u.Claims = setClaim(u.Claims, claim, append([]string(nil), vals...))
		}
	}
	return u
}

func setClaim(m map[string]any, k string, v any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	m[k] = v
	return m
}

// FindByUsername implements kisee.UserFinder.
func (b *Backend) FindByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.findUser(ctx, b.o.UserFilter, username)
}

// FindByEmail implements kisee.UserFinder.
func (b *Backend) FindByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.findUser(ctx, b.o.EmailFilter, email)
}

func (b *Backend) findUser(ctx context.Context, filter, value string) (kisee.User, error) {
	if !kisee.PlausibleUsername(value) {
		return kisee.User{}, kisee.ErrUserNotFound
	}
	entry, err := b.find(ctx, filter, value)
	if err != nil {
		return kisee.User{}, fmt.Errorf("find user: %w", err)
	}
	if entry == nil {
		return kisee.User{}, kisee.ErrUserNotFound
	}
	if filter == b.o.EmailFilter && entry.GetEqualFoldAttributeValue(b.o.UsernameAttribute) == "" {
		b.logger.WarnContext(ctx, "ldap: entry found by email has no username attribute", "dn", entry.DN, "attribute", b.o.UsernameAttribute)
		return kisee.User{}, kisee.ErrUserNotFound
	}
	return b.user(entry, value), nil
}

// Health implements kisee.HealthChecker: a service-bound connection reads
// the base entry.
func (b *Backend) Health(ctx context.Context) error {
	c, _, err := b.get(ctx)
	if err != nil {
		return err
	}
	req := goldap.NewSearchRequest(b.o.BaseDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1,
		int(math.Ceil(b.timeout.Seconds())), false, "(objectClass=*)", []string{"1.1"}, nil)
	good, err := do(ctx, c, func() error { _, err := c.Search(req); return err })
	b.put(c, good)
	if err != nil {
		return fmt.Errorf("ldap: read base_dn %q: %w", b.o.BaseDN, err)
	}
	return nil
}
