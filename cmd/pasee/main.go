// Command pasee is the identity manager: it federates identity providers,
// keeps hierarchical groups, and issues access/refresh token pairs. See
// README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kisee-pasee/suite/internal/pasee/app"
)

// version is stamped at build time: -ldflags "-X main.version=26.11.0".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, version)
	stop()
	os.Exit(code)
}
