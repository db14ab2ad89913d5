package web

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Health is the body of GET /health.
type Health struct {
	Status   string `json:"status"`   // "green" or "red"
	Database string `json:"database"` // "OK" or "KO"
	// Backend is Kisee's identity backend: "OK" or "KO".
	Backend string `json:"backend,omitempty"`
	// Providers are Pasee's identity providers by name: "OK", "KO", or
	// "unchecked" for those without a cheap probe (oauth2, oidc).
	Providers map[string]string `json:"providers,omitempty"`
	Version   string            `json:"version"`
}

// HealthChecks are what GET /health reports.
type HealthChecks struct {
	// Database is the service's own store, its schema included; red when
	// it fails.
	Database func(context.Context) error
	// Backend, when set, is Kisee's identity backend; red when it fails:
	// no login can be served.
	Backend func(context.Context) error
	// Providers, when set, are checked each (a nil check is "unchecked");
	// red only when every one fails: some logins can still be served.
	Providers map[string]func(context.Context) error
}

// HealthHandler answers GET /health: 200 green when check passes, 503 red
// when it fails (a dead database, an unreachable backend). The failure's
// cause is logged, not shown.
func (s *Server) HealthHandler(version string, check func(context.Context) error) echo.HandlerFunc {
	return s.HealthReport(version, HealthChecks{Database: check})
}

// HealthReport answers GET /health with each check of hc: 200 green, or
// 503 red when the database or the backend fails or every provider does.
// Each failure's cause is logged (at WARN), never shown.
func (s *Server) HealthReport(version string, hc HealthChecks) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		h := Health{Status: "green", Database: "OK", Version: version}
		var mu sync.Mutex
		var wg sync.WaitGroup
		run := func(what string, check func(context.Context) error, set func(ok bool)) {
			wg.Go(func() {
				err := check(ctx)
				if err != nil {
					s.logger.WarnContext(ctx, "health check failed", "request_id", RequestID(c), "check", what, "error", err)
				}
				mu.Lock()
				set(err == nil)
				mu.Unlock()
			})
		}
		word := map[bool]string{true: "OK", false: "KO"}
		red := false
		if hc.Database != nil {
			run("database", hc.Database, func(ok bool) { h.Database = word[ok]; red = red || !ok })
		}
		if hc.Backend != nil {
			run("backend", hc.Backend, func(ok bool) { h.Backend = word[ok]; red = red || !ok })
		}
		servable := len(hc.Providers) == 0
		if len(hc.Providers) > 0 {
			h.Providers = make(map[string]string, len(hc.Providers))
			names := make([]string, 0, len(hc.Providers))
			for name := range hc.Providers {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				check := hc.Providers[name]
				if check == nil {
					mu.Lock()
					h.Providers[name] = "unchecked"
					servable = true
					mu.Unlock()
					continue
				}
				run("provider "+name, check, func(ok bool) {
					h.Providers[name] = word[ok]
					servable = servable || ok
				})
			}
		}
		wg.Wait()
		status := http.StatusOK
		if red || !servable {
			h.Status, status = "red", http.StatusServiceUnavailable
		}
		return c.JSON(status, h)
	}
}
