package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
)

// counters are Pasee's event counters: Prometheus counters for /metrics,
// and the last hour of each for /status.
type counters struct {
	logins, failures, refreshes, reuse *web.RollingCounter
	metrics                            pasee.Metrics
}

func newCounters(reg *prometheus.Registry) *counters {
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pasee", Name: "logins_total", Help: "Login attempts, by result (success: a session opened; failure: refused credentials, token, lockout or ban)."}, []string{"result"})
	refreshes := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "pasee", Name: "refreshes_total", Help: "Refresh tokens exchanged for a new pair."})
	reuse := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "pasee", Name: "refresh_reuse_detected_total", Help: "Spent refresh tokens presented again; each revoked its session."})
	reg.MustRegister(logins, refreshes, reuse)
	c := &counters{
		logins: web.NewRollingCounter(nil), failures: web.NewRollingCounter(nil),
		refreshes: web.NewRollingCounter(nil), reuse: web.NewRollingCounter(nil),
	}
	c.metrics = pasee.Metrics{
		Logins:        web.Counters{logins.WithLabelValues("success"), c.logins},
		LoginsFailed:  web.Counters{logins.WithLabelValues("failure"), c.failures},
		Refreshes:     web.Counters{refreshes, c.refreshes},
		ReuseDetected: web.Counters{reuse, c.reuse},
	}
	return c
}

// statusPage is Pasee's /status: store health, the reachability of the
// kisee and pasee providers, the published keys, and the last hour of
// logins, failures, refreshes and reuse detections.
func (a *App) statusPage(version string, c *counters) *web.StatusPage {
	cfg := a.Config
	page := &web.StatusPage{
		Title: "Pasee", Version: version, Started: time.Now(),
		Checks: []web.StatusCheck{{Name: "store", Check: a.Store.Ping}},
		Keys:   statusKeys(cfg),
		Counters: []web.StatusCounter{
			{Name: "successful logins", Counter: c.logins}, {Name: "failed logins", Counter: c.failures},
			{Name: "token refreshes", Counter: c.refreshes}, {Name: "refresh token reuse detected", Counter: c.reuse},
		},
	}
	for _, p := range cfg.IdentityProviders {
		if probe, ok := a.probes[p.Name]; ok {
			page.Checks = append(page.Checks, web.StatusCheck{Name: "provider " + p.Name + " (" + p.Protocol + ")", Check: probe.Check})
		}
	}
	return page
}

// providerProbes are the probes of the kisee and pasee providers' /health,
// by name, shared by /status and /health. OAuth2 and OIDC providers have
// no cheap, unauthenticated probe.
func providerProbes(cfg *Config) map[string]*probe {
	probes := map[string]*probe{}
	for _, p := range cfg.IdentityProviders {
		if p.Endpoint != "" && (p.Protocol == "kisee" || p.Protocol == "pasee") {
			probes[p.Name] = newProbe(strings.TrimSuffix(p.Endpoint, "/") + "/health")
		}
	}
	return probes
}

// statusKeys lists the published keys, with the file the current key came
// from (its age is the file's).
func statusKeys(cfg *Config) []web.StatusKey {
	file := cfg.JWT.PrivateKeyFile
	if file == "" {
		file = cfg.Settings.Keys.PrivateKeyFile
	}
	if file == "" && cfg.Source.File == settings.DefaultsName && cfg.JWT.PrivateKey == "" && cfg.Settings.Keys.PrivateKey == "" {
		file = DefaultKeyFile
	}
	keys := []web.StatusKey{{Key: cfg.Keys.Current.Public(), Role: "current", File: file}}
	for _, k := range cfg.Keys.Next {
		keys = append(keys, web.StatusKey{Key: k, Role: "next"})
	}
	for _, k := range cfg.Keys.Previous {
		keys = append(keys, web.StatusKey{Key: k, Role: "previous"})
	}
	return keys
}

// probeTTL is how long a provider's reachability is remembered: /status
// and /health need no credentials, and must not let anyone make Pasee call
// its providers at will. A failure is remembered for probeRetry only, so
// that /health turns green soon after a provider comes back (or starts
// after Pasee, as in `make run`).
const (
	probeTTL   = 30 * time.Second
	probeRetry = 2 * time.Second
)

// probe checks that a provider answers its /health, at most once per
// probeTTL.
type probe struct {
	url    string
	client *http.Client

	mu      sync.Mutex
	checked time.Time
	err     error
}

func newProbe(url string) *probe {
	return &probe{url: url, client: &http.Client{
		Timeout:       2 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check reports whether the provider answered 200 to its latest probe.
func (p *probe) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ttl := probeTTL
	if p.err != nil {
		ttl = probeRetry
	}
	if !p.checked.IsZero() && time.Since(p.checked) < ttl {
		return p.err
	}
	p.err = p.get(ctx)
	p.checked = time.Now()
	return p.err
}

func (p *probe) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", p.url, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: status %d", p.url, resp.StatusCode)
	}
	return nil
}
