package app

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// warnProxyAtStart says, when Kisee listens beyond the loopback interface
// while believing X-Forwarded-For from the loopback addresses only, that a
// Pasee or proxy on another host has to be listed: otherwise every client
// it forwards shares its address, and its brute-force counters.
func warnProxyAtStart(logger *slog.Logger, host string, trusted []string) {
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() || host == "localhost" {
		return
	}
	if len(trusted) == 0 || slices.Equal(trusted, DefaultTrustedProxies()) {
		logger.Warn("Kisee listens beyond the loopback interface and believes X-Forwarded-For only from "+trustedText(trusted)+
			": list the address of a Pasee or reverse proxy on another host in [server] trusted_proxies, or the clients it forwards are counted as one by brute-force protection",
			"host", host, "trusted_proxies", trusted)
	}
}

func trustedText(trusted []string) string {
	if len(trusted) == 0 {
		return "no address"
	}
	return "the loopback addresses"
}

// addressLockWarner returns the hook the limiter calls when an address
// reaches its lockout (it failed for many accounts): a warning, at most
// once per address per 10 minutes, that names trusted_proxies, since a
// proxy not listed there looks exactly like this.
func addressLockWarner(logger *slog.Logger, trusted []string) func(ctx context.Context, addr string) {
	const every = 10 * time.Minute
	var mu sync.Mutex
	last := map[string]time.Time{}
	return func(ctx context.Context, addr string) {
		now := time.Now()
		mu.Lock()
		if t, ok := last[addr]; ok && now.Sub(t) < every {
			mu.Unlock()
			return
		}
		if len(last) >= 1024 {
			clear(last)
		}
		last[addr] = now
		mu.Unlock()
		logger.WarnContext(ctx, "one client address failed logins for many accounts and is locked out; if it is Pasee or a reverse proxy, list it in [server] trusted_proxies so that Kisee counts the end clients' addresses",
			"client", addr, "trusted_proxies", trusted)
	}
}
