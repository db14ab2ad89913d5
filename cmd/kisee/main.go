// Command kisee is the identity provider: it checks username/password pairs
// against a backend and issues signed identity tokens. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kisee-pasee/suite/internal/kisee/app"
)

// version is stamped at build time: -ldflags "-X main.version=26.11.0".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, version)
	stop()
	os.Exit(code)
}
