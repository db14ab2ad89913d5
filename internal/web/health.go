package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Health is the body of GET /health.
type Health struct {
	Status   string `json:"status"`   // "green" or "red"
	Database string `json:"database"` // "OK" or "KO"
	Version  string `json:"version"`
}

// HealthHandler answers GET /health: 200 green when check passes, 503 red
// when it fails (a dead database, an unreachable backend). The failure's
// cause is logged, not shown.
func (s *Server) HealthHandler(version string, check func(context.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
		defer cancel()
		h := Health{Status: "green", Database: "OK", Version: version}
		status := http.StatusOK
		if check != nil {
			if err := check(ctx); err != nil {
				s.logger.WarnContext(ctx, "health check failed", "request_id", RequestID(c), "error", err)
				h.Status, h.Database, status = "red", "KO", http.StatusServiceUnavailable
			}
		}
		return c.JSON(status, h)
	}
}
