// Package oidcproxy tests Pasee as the OpenID Provider of a real reverse
// proxy: oauth2-proxy (github.com/oauth2-proxy/oauth2-proxy), the one most
// often put in front of an internal app, allowing only a Pasee group.
//
// oauth2-proxy is run as a binary, built from the Go module proxy at a
// pinned version into the user's cache directory the first time (a few
// minutes), so that none of its dependencies enters a go.mod of this
// repository. OAUTH2_PROXY_BIN names an existing binary instead. When the
// binary can neither be found nor built, the test skips loudly, except
// under CI=true, where it fails.
package oidcproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Version is the oauth2-proxy release the test runs.
const Version = "v7.15.6"

// Module is the Go package of oauth2-proxy's command.
const Module = "github.com/oauth2-proxy/oauth2-proxy/v7"

// Binary returns the path of oauth2-proxy Version: $OAUTH2_PROXY_BIN, or
// <user cache>/kisee-pasee/oauth2-proxy-<Version>/oauth2-proxy, built
// there with `go install` when it is not yet.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv("OAUTH2_PROXY_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("OAUTH2_PROXY_BIN: %w", err)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the oauth2-proxy binary: %w", err)
	}
	dir := filepath.Join(cache, "kisee-pasee", "oauth2-proxy-"+Version)
	bin := filepath.Join(dir, "oauth2-proxy")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built in a scratch directory (outside any module of this
	// repository), then renamed: a build cut short leaves no half binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "-trimpath", Module+"@"+Version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", Module, Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "oauth2-proxy"), bin); err != nil {
		return "", err
	}
	return bin, nil
}
