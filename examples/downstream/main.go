// Command downstream is a small service that trusts Pasee's access tokens
// through pkg/verify, without calling Pasee on each request: the pattern
// every Go service behind Kisee and Pasee follows. See README.md.
//
//	GET /public    anyone
//	GET /me        any valid access token: who the caller is
//	GET /articles  members of "articles" or of any group under it
//	GET /admin     members of "staff"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kisee-pasee/suite/pkg/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "downstream:", err)
		os.Exit(1)
	}
}

// config is what the command line says.
type config struct {
	listen   string
	pasee    string
	jwksURL  string
	issuer   string
	audience string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("downstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&cfg.pasee, "pasee", "http://127.0.0.1:8150", "Pasee's public base URL (its hostname setting): the issuer of its tokens, with its keys at <URL>/jwks.json")
	fs.StringVar(&cfg.jwksURL, "jwks-url", "", "where Pasee publishes its keys (default <pasee>/jwks.json)")
	fs.StringVar(&cfg.issuer, "issuer", "", "the \"iss\" of Pasee's tokens, its [jwt] iss (default <pasee>)")
	fs.StringVar(&cfg.audience, "audience", "", "required \"aud\", if Pasee's [jwt] audience is set")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	base := strings.TrimSuffix(cfg.pasee, "/")
	if cfg.jwksURL == "" {
		cfg.jwksURL = base + "/jwks.json"
	}
	if cfg.issuer == "" {
		cfg.issuer = base
	}
	return cfg, nil
}

// run serves until ctx is done, then drains in-flight requests. ready, if
// not nil, is told the listening address (tests listen on port 0).
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("service", "downstream")
	v, err := verify.New(ctx, verify.Options{JWKSURL: cfg.jwksURL, Issuer: cfg.issuer, Audience: cfg.audience})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: newServer(v, logger), ReadHeaderTimeout: 10 * time.Second}
	logger.Info("downstream listening", "addr", ln.Addr().String(), "jwks_url", cfg.jwksURL, "issuer", cfg.issuer)
	if ready != nil {
		ready(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// newServer wires the routes: the verifying middleware on everything but
// /public, then each route's group requirement. It uses net/http only, so
// the service depends on pkg/verify and pkg/token and nothing of the
// servers; services on echo do the same with pkg/verify/echoverify.
func newServer(v *verify.Verifier, logger *slog.Logger) http.Handler {
	verified := verify.Middleware(v)
	auth := func(h http.Handler) http.Handler { return verified(remember(h)) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"message": "Anyone can read this."})
	})
	mux.Handle("GET /me", auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verify.IdentityFrom(r.Context())
		writeJSON(w, map[string]any{"user": id.Subject, "groups": id.Groups, "idp": id.IDP})
	})))
	mux.Handle("GET /articles", auth(verify.RequireGroupTree("articles")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verify.IdentityFrom(r.Context())
		// The route admits the whole tree; finer decisions are made here.
		writeJSON(w, map[string]any{
			"articles":  []string{"Welcome to the newsroom", "How groups work"},
			"can_write": id.AnyOf("articles.writers", "articles.staff"),
		})
	}))))
	mux.Handle("GET /admin", auth(verify.RequireGroups("staff")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := verify.IdentityFrom(r.Context())
		writeJSON(w, map[string]string{"message": "Welcome, " + id.Subject + "."})
	}))))
	return logRequests(mux, logger)
}

// logRequests logs who did what, never the token. The caller is known only
// below the verifying middleware: remember notes it in a holder logRequests
// put in the context.
func logRequests(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		seen := &seenIdentity{}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), seenKey{}, seen)))
		logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "user", seen.user)
	})
}

type seenKey struct{}

// seenIdentity is the caller of a request, as remember noted it.
type seenIdentity struct{ user string }

// remember notes the verified caller for the request log.
func remember(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ := r.Context().Value(seenKey{}).(*seenIdentity)
		if id, ok := verify.IdentityFrom(r.Context()); ok && seen != nil {
			seen.user = id.Subject
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder keeps the status a handler answered, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
