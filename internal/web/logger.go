package web

import (
	"io"
	"log/slog"
)

// NewLogger returns the service's structured logger: format "json" or
// text, level "debug", "info" (default), "warn" or "error".
func NewLogger(service, format, level string, w io.Writer) *slog.Logger {
	l := slog.LevelInfo
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", service)
}
