package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBodyLimit is the largest request body accepted by default: 64 KiB.
const DefaultBodyLimit = 64 << 10

// Config describes a server.
type Config struct {
	Name    string // "kisee" or "pasee": metric namespace and log attribute
	Version string
	Logger  *slog.Logger
	// Registry receives the HTTP metrics; the service adds its own.
	Registry *prometheus.Registry
	CORS     CORSConfig
	// BodyLimit bounds request bodies; 0 means DefaultBodyLimit.
	BodyLimit int64
	// TrustedProxies are the addresses or CIDR ranges whose X-Forwarded-For
	// is believed when finding the client address. Empty: none is.
	TrustedProxies []string
	// ReportError is called with every 5xx error; may be nil.
	ReportError func(c echo.Context, err error)
	// SentryDSN, when set, reports panics and 5xx errors to Sentry. The
	// commands take it from the SENTRY_DSN environment variable.
	SentryDSN string
}

// CORSConfig lists the origins allowed to call the API from a browser.
type CORSConfig struct {
	AllowedOrigins   []string // exact origins, or "*" (then without credentials)
	AllowCredentials bool
}

// Server is an echo instance with the suite's middleware, and its metrics.
type Server struct {
	*echo.Echo
	Metrics *Metrics
	logger  *slog.Logger
	sentry  *Sentry
}

// New returns a server with request ids, panic recovery, request logs,
// metrics, security headers, CORS, body limit and problem documents.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	for _, o := range cfg.CORS.AllowedOrigins {
		if o == "*" && cfg.CORS.AllowCredentials {
			return nil, errors.New("cors: \"*\" cannot be allowed with credentials; list the origins")
		}
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(discard{})
	extractor, err := ipExtractor(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	e.IPExtractor = extractor
	reporter, err := NewSentry(cfg.SentryDSN, cfg.Version, cfg.Name)
	if err != nil {
		return nil, err
	}
	report := cfg.ReportError
	if reporter != nil {
		cfg.Logger.Info("reporting panics and server errors to Sentry")
		report = func(c echo.Context, err error) {
			reporter.Report(c, err)
			if cfg.ReportError != nil {
				cfg.ReportError(c, err)
			}
		}
	}
	e.HTTPErrorHandler = errorHandler(cfg.Logger, report)
	m := newMetrics(cfg.Name, cfg.Registry)
	e.Pre(headAsGet)
	e.Use(
		restoreHead,
		requestID,
		accessLog(cfg.Logger),
		m.middleware,
		commitErrors,
		recoverPanics(cfg.Logger),
		securityHeaders(),
		headerLimit(MaxHeaderBytes),
		cors(cfg.CORS),
		bodyLimit(cfg.BodyLimit),
	)
	return &Server{Echo: e, Metrics: m, logger: cfg.Logger, sentry: reporter}, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Route registers h for method at path and at path with its trailing slash
// toggled, so that /jwt and /jwt/ both answer.
func (s *Server) Route(method, path string, h echo.HandlerFunc) {
	s.Add(method, path, h)
	if path == "/" {
		return
	}
	if strings.HasSuffix(path, "/") {
		s.Add(method, strings.TrimSuffix(path, "/"), h)
	} else {
		s.Add(method, path+"/", h)
	}
}

// ipExtractor believes X-Forwarded-For only from trusted proxies.
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, t := range trusted {
		if !strings.Contains(t, "/") {
			if ip := net.ParseIP(t); ip != nil && ip.To4() != nil {
				t += "/32"
			} else {
				t += "/128"
			}
		}
		_, n, err := net.ParseCIDR(t)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR range", t)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

const (
	ctxHead = "web.head"
)

// headAsGet routes HEAD like GET, so that every resource that answers GET
// answers HEAD (net/http sends the headers and drops the body).
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodHead {
			c.Request().Method = http.MethodGet
			c.Set(ctxHead, true)
		}
		return next(c)
	}
}

// restoreHead gives a routed HEAD request its method back, for the logs,
// the metrics and the handlers.
func restoreHead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if head, _ := c.Get(ctxHead).(bool); head {
			c.Request().Method = http.MethodHead
		}
		return next(c)
	}
}

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID takes a sane incoming X-Request-Id or makes one, and returns it.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.SetRequest(c.Request().WithContext(WithRequestID(c.Request().Context(), id)))
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// RequestID returns the id of the request being served.
func RequestID(c echo.Context) string {
	return RequestIDFrom(c.Request().Context())
}

// accessLog writes one line per request. It logs the path without its query
// string (which may hold codes or states) and never a header or a body.
func accessLog(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			_ = next(c) // commitErrors has written any error
			status := c.Response().Status
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(c.Request().Context(), level, "request",
				slog.String("request_id", RequestID(c)),
				slog.String("method", c.Request().Method),
				slog.String("path", c.Request().URL.Path),
				slog.String("route", c.Path()),
				slog.Int("status", status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("client", c.RealIP()),
			)
			return nil
		}
	}
}

// commitErrors writes a handler's error as a problem document, so that the
// middleware around it (logs, metrics) sees the status sent.
func commitErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := next(c); err != nil {
			c.Error(err)
		}
		return nil
	}
}

// recoverPanics turns a panic into a 500 problem and logs its stack.
func recoverPanics(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					logger.ErrorContext(c.Request().Context(), "panic", "request_id", RequestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = AsProblem(fmt.Errorf("panic: %v", r))
				}
			}()
			return next(c)
		}
	}
}

// securityHeaders sets headers fit for a JSON API on every response:
// handlers serving HTML or cacheable documents override them.
//
// The values are built once and shared by every response, each a slice of
// capacity one: Header.Set replaces a slice and Header.Add appends to a
// copy, so a handler's change never reaches another response.
func securityHeaders() echo.MiddlewareFunc {
	one := func(v string) []string { return []string{v}[:1:1] }
	var (
		nosniff = one("nosniff")
		deny    = one("DENY")
		csp     = one("default-src 'none'; frame-ancestors 'none'")
		noRef   = one("no-referrer")
		noStore = one("no-store")
	)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h["X-Content-Type-Options"] = nosniff
			h["X-Frame-Options"] = deny
			h["Content-Security-Policy"] = csp
			h["Referrer-Policy"] = noRef
			h["Cache-Control"] = noStore
			return next(c)
		}
	}
}

// MaxHeaderBytes bounds the request line and headers a handler sees; larger
// requests get a 431 problem document (headerLimit). The HTTP server itself
// reads up to transportMaxHeaderBytes, so that a request just over this
// limit (a 64 KiB Authorization header) still gets a problem document;
// beyond that Go's server cuts it with a plain-text 431 before any handler.
const MaxHeaderBytes = 32 << 10

// transportMaxHeaderBytes is http.Server.MaxHeaderBytes: the hard cap, with
// room above MaxHeaderBytes for the problem-document answer.
const transportMaxHeaderBytes = 128 << 10

// headerLimit refuses requests whose headers exceed limit bytes with 431.
//
// http.Server's MaxHeaderBytes alone would answer Go's plain-text "431
// Request Header Fields Too Large", not a problem document: it is set higher
// (transportMaxHeaderBytes), and this middleware enforces the limit.
func headerLimit(limit int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			size := len(req.Method) + len(req.RequestURI) + len(req.Proto) + 4
			for name, values := range req.Header {
				for _, v := range values {
					size += len(name) + len(v) + 4 // "Name: value\r\n"
				}
			}
			if size > limit {
				return NewProblem(http.StatusRequestHeaderFieldsTooLarge, "Request headers too large",
					fmt.Sprintf("The request line and headers are limited to %d bytes.", limit))
			}
			return next(c)
		}
	}
}

// cors answers preflights and sets Access-Control-* for allowed origins
// only; a request from another origin gets no CORS headers, so the browser
// refuses to hand it the response.
//
// A browser request with an unsafe method (POST, PATCH, DELETE) from an
// origin that is neither allowed nor the server's own is refused with 403
// before it runs (http.CrossOriginProtection: Sec-Fetch-Site, else Origin
// against Host). CORS alone only hides the answer: a cross-site HTML form
// posting text/plain — which needs no preflight, and which the API reads as
// JSON — could make visitors' browsers try passwords from thousands of
// addresses or send recovery email. Requests without Origin or
// Sec-Fetch-Site (curl, services) pass.
func cors(cfg CORSConfig) echo.MiddlewareFunc {
	anyOrigin := slices.Contains(cfg.AllowedOrigins, "*")
	sameOrigin := http.NewCrossOriginProtection() // no trusted origins: the allowed ones are checked below
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			origin := c.Request().Header.Get(echo.HeaderOrigin)
			h := c.Response().Header()
			h.Add(echo.HeaderVary, echo.HeaderOrigin)
			allowed := origin != "" && (anyOrigin || slices.Contains(cfg.AllowedOrigins, origin))
			preflight := c.Request().Method == http.MethodOptions && c.Request().Header.Get(echo.HeaderAccessControlRequestMethod) != ""
			if preflight {
				if !allowed {
					return Forbidden("Origin not allowed", fmt.Sprintf("Origin %q is not in [cors] allowed_origins.", origin))
				}
				h.Set(echo.HeaderAccessControlAllowOrigin, originValue(anyOrigin, cfg, origin))
				h.Set(echo.HeaderAccessControlAllowMethods, "GET, POST, PATCH, DELETE, OPTIONS")
				h.Set(echo.HeaderAccessControlAllowHeaders, "Authorization, Content-Type, X-Request-Id")
				h.Set(echo.HeaderAccessControlMaxAge, "600")
				if cfg.AllowCredentials {
					h.Set(echo.HeaderAccessControlAllowCredentials, "true")
				}
				return c.NoContent(http.StatusNoContent)
			}
			if !allowed && !anyOrigin {
				if err := sameOrigin.Check(c.Request()); err != nil {
					return Forbidden("Origin not allowed", fmt.Sprintf("A cross-origin %s from %q is refused: that origin is not in [cors] allowed_origins.", c.Request().Method, origin))
				}
			}
			if allowed {
				h.Set(echo.HeaderAccessControlAllowOrigin, originValue(anyOrigin, cfg, origin))
				h.Set(echo.HeaderAccessControlExposeHeaders, "Location, X-Request-Id, Retry-After, WWW-Authenticate")
				if cfg.AllowCredentials {
					h.Set(echo.HeaderAccessControlAllowCredentials, "true")
				}
			}
			return next(c)
		}
	}
}

func originValue(anyOrigin bool, cfg CORSConfig, origin string) string {
	if anyOrigin && !cfg.AllowCredentials {
		return "*"
	}
	return origin
}

// bodyLimit refuses bodies over limit bytes with 413, whether announced by
// Content-Length or discovered while reading.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return BodyTooLarge(limit)
			}
			if req.Body != nil {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			}
			return next(c)
		}
	}
}

// BodyTooLarge is the 413 of a body over limit bytes (0: a limit not
// known here).
func BodyTooLarge(limit int64) *Problem {
	detail := "The request body is too large."
	if limit > 0 {
		detail = fmt.Sprintf("Request bodies are limited to %d bytes.", limit)
	}
	return NewProblem(http.StatusRequestEntityTooLarge, "Request body too large", detail)
}

// Serve serves s on ln until ctx is done, then stops accepting connections
// and waits up to drain for in-flight requests to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drain time.Duration) error {
	srv := &http.Server{
		Handler:           s.Echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    transportMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(problemListener{ln}) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: draining in-flight requests", "timeout", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if s.sentry != nil {
		s.sentry.Flush(5 * time.Second)
	}
	return nil
}
