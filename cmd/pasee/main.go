// Command pasee is the identity manager: it federates identity providers,
// keeps hierarchical groups, and issues access/refresh token pairs. See
// README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/kisee-pasee/suite/internal/pasee/app"
)

// version is stamped at build time: -ldflags "-X main.version=26.11.0".
var version = "dev"

// gcPercent is Pasee's garbage collection target unless GOGC says
// otherwise. Its live heap is a few MiB and what a request allocates dies
// with it, so at Go's default (100) the collector runs dozens of times a
// second under load, for nothing: at 400 a refresh costs about a fifth
// less processor time, for some tens of MiB more at peak (docs/benchmarks.md).
// GOMEMLIMIT still bounds the heap when set.
const gcPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, version)
	stop()
	os.Exit(code)
}
