// Package htpasswd is the "htpasswd" backend: users of an Apache htpasswd
// file, one "user:hash" per line, as written by `htpasswd -B` (bcrypt) or
// `htpasswd -2` / `htpasswd -5` (SHA-256-crypt, SHA-512-crypt).
//
// The file is re-read when it changes, so an operator adds or removes a
// user with the htpasswd tool (or any editor, or a configuration manager
// replacing the file) without restarting Kisee. Lines Kisee cannot use
// safely — the weak formats APR1-MD5, SHA-1, crypt(3) DES and plaintext,
// and malformed lines — are skipped and named by line number in the log:
// the rest of the file keeps working.
//
// The file holds no email addresses, so the backend cannot find users by
// email and implements neither kisee.UserFinder nor, being read-only,
// kisee.Registerer and kisee.PasswordSetter.
package htpasswd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/password"
)

// Options are the [identity_backend.options] of the htpasswd backend.
type Options struct {
	// Path of the htpasswd file. A relative path is relative to the working
	// directory at start.
	Path string `toml:"path"`
}

// Limits on the cost of a single hash: a line above them would let one
// login attempt occupy a hashing slot for many seconds.
const (
	// maxBcryptCost is htpasswd's own maximum (-C 17).
	maxBcryptCost = 17
	// maxCryptRounds caps SHA-crypt rounds (htpasswd -r), like the
	// password package caps PBKDF2 iterations.
	maxCryptRounds = 10_000_000
)

const (
	// debounce groups the several events of one save (truncate, write,
	// chmod; or create-then-rename) into one reload.
	debounce = 50 * time.Millisecond
	// pollInterval is a safety net for file systems where change events
	// are not delivered (NFS, some container volume drivers).
	pollInterval = 30 * time.Second
)

var (
	bcryptRE = regexp.MustCompile(`^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$`)
	shaCrypt = regexp.MustCompile(`^\$([56])\$(?:rounds=(\d{1,10})\$)?[^$:]{1,16}\$([./0-9A-Za-z]+)$`)
	desRE    = regexp.MustCompile(`^[./0-9A-Za-z]{13}$`)
)

// users is one loaded version of the file.
type users struct {
	hashes map[string]string // username → hash
	// dummy is a hash with the most common parameters of the file: an
	// unknown user is verified against it, so that it costs what a known
	// user with a wrong password costs (htpasswd -B's cost 5 takes a few
	// milliseconds, far from the argon2id of the hasher's own dummy).
	dummy string
	sum   [sha256.Size]byte // of the file's content, to skip no-op reloads
}

// Backend identifies the users of an htpasswd file. It implements
// kisee.Backend and kisee.HealthChecker.
type Backend struct {
	path   string
	hasher *password.Hasher
	logger *slog.Logger

	mu    sync.RWMutex
	users *users

	reloadMu sync.Mutex // serializes reloads; guards lastErr
	lastErr  string     // last reload error, logged once until it changes

	watcher   *fsnotify.Watcher
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ kisee.Backend       = (*Backend)(nil)
	_ kisee.HealthChecker = (*Backend)(nil)
)

// Open loads the file at o.Path and starts watching it. The file must be
// readable at start (a typo in the path must not start a Kisee nobody can
// log into); unusable lines are only logged. Close stops the watching.
func Open(ctx context.Context, o Options, hasher *password.Hasher, logger *slog.Logger) (*Backend, error) {
	if o.Path == "" {
		return nil, errors.New("htpasswd: path is required (the htpasswd file, e.g. /etc/kisee/htpasswd)")
	}
	if hasher == nil {
		return nil, errors.New("htpasswd: a password hasher is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	path, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: path %q: %w", o.Path, err)
	}
	b := &Backend{path: path, hasher: hasher, logger: logger.With("backend", "htpasswd", "file", path), done: make(chan struct{})}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	b.users = b.parse(ctx, data)
	b.logger.InfoContext(ctx, "htpasswd file loaded", "users", len(b.users.hashes))

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("htpasswd: watch %s: %w", path, err)
	}
	// The directory, not the file: editors and configuration managers
	// replace the file (write a temporary file, rename it over), which
	// would end a watch on the file itself.
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("htpasswd: watch directory of %s: %w", path, err)
	}
	b.watcher = w
	// A symlinked file (a Kubernetes ConfigMap or Secret volume) changes
	// when a symlink elsewhere in the directory is swapped: watch them all.
	fi, err := os.Lstat(path)
	anyName := err == nil && fi.Mode()&os.ModeSymlink != 0
	b.wg.Add(1)
	go b.watch(anyName)
	return b, nil
}

// Close stops watching the file. The backend still answers from the users
// it had.
func (b *Backend) Close() error {
	var err error
	b.closeOnce.Do(func() {
		close(b.done)
		if b.watcher != nil {
			err = b.watcher.Close()
		}
		b.wg.Wait()
	})
	return err
}

// watch reloads the file after changes: at most debounce after the first
// event of a burst, and every pollInterval in case events are lost.
func (b *Backend) watch(anyName bool) {
	defer b.wg.Done()
	ctx := context.Background()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	timer := time.NewTimer(debounce)
	timer.Stop()
	pending := false
	for {
		select {
		case <-b.done:
			timer.Stop()
			return
		case ev, ok := <-b.watcher.Events:
			if !ok {
				return
			}
			if !anyName && filepath.Clean(ev.Name) != b.path {
				continue
			}
			if !pending {
				pending = true
				timer.Reset(debounce)
			}
		case err, ok := <-b.watcher.Errors:
			if !ok {
				return
			}
			// Typically an overflowing event queue: re-read to be safe.
			b.logger.WarnContext(ctx, "htpasswd file watch error; re-reading the file", "error", err)
			b.reload(ctx)
		case <-timer.C:
			pending = false
			b.reload(ctx)
		case <-poll.C:
			b.reload(ctx)
		}
	}
}

// reload re-reads the file and swaps in its users. A file that cannot be
// read (deleted, replaced without permissions) keeps the previous users:
// during a delete-then-recreate, logins go on working.
func (b *Backend) reload(ctx context.Context) {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	data, err := os.ReadFile(b.path)
	if err != nil {
		if msg := err.Error(); msg != b.lastErr {
			b.lastErr = msg
			b.mu.RLock()
			n := len(b.users.hashes)
			b.mu.RUnlock()
			b.logger.WarnContext(ctx, "cannot re-read htpasswd file; keeping the users loaded before", "users", n, "error", err)
		}
		return
	}
	b.lastErr = ""
	b.mu.RLock()
	same := b.users.sum == sha256.Sum256(data)
	b.mu.RUnlock()
	if same {
		return
	}
	u := b.parse(ctx, data)
	b.mu.Lock()
	b.users = u
	b.mu.Unlock()
	b.logger.InfoContext(ctx, "htpasswd file reloaded", "users", len(u.hashes))
}

// parse reads the lines of an htpasswd file, logging (without their
// content, which may be a clear-text password) the lines it skips.
func (b *Backend) parse(ctx context.Context, data []byte) *users {
	u := &users{hashes: map[string]string{}, sum: sha256.Sum256(data)}
	firstLine := map[string]int{}
	type params struct {
		count int
		hash  string
	}
	byParams := map[string]*params{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF") // a byte order mark left by an editor
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ":")
		skip := func(reason string, attrs ...any) {
			b.logger.WarnContext(ctx, "htpasswd: skipping line "+strconv.Itoa(n)+": "+reason, append([]any{"line", n}, attrs...)...)
		}
		switch {
		case !ok:
			skip("malformed, expected user:hash")
			continue
		case name == "" || !kisee.PlausibleUsername(name) || strings.TrimSpace(name) != name:
			skip("malformed username")
			continue
		case hash == "":
			skip("empty hash", "user", name)
			continue
		}
		key, reason := classify(hash)
		if reason != "" {
			skip(reason, "user", name)
			continue
		}
		if first, dup := firstLine[name]; dup {
			skip("duplicate user; the entry of line "+strconv.Itoa(first)+" is kept", "user", name)
			continue
		}
		firstLine[name] = n
		u.hashes[name] = hash
		if p, ok := byParams[key]; ok {
			p.count++
		} else {
			byParams[key] = &params{count: 1, hash: hash}
			order = append(order, key)
		}
	}
	if err := sc.Err(); err != nil {
		// Only a line longer than 1 MiB gets here; the lines before it count.
		b.logger.WarnContext(ctx, "htpasswd: stopped reading at line "+strconv.Itoa(n+1), "line", n+1, "error", err)
	}
	best := 0
	for _, k := range order {
		if p := byParams[k]; p.count > best {
			best, u.dummy = p.count, p.hash
		}
	}
	if len(u.hashes) == 0 {
		b.logger.WarnContext(ctx, "htpasswd file has no usable user: nobody can log in")
	}
	return u
}

// classify returns the parameters of a usable hash ("bcrypt:5",
// "sha512:5000"), or why the hash cannot be used.
func classify(hash string) (params, reason string) {
	switch {
	case strings.HasPrefix(hash, "$2"):
		m := bcryptRE.FindStringSubmatch(hash)
		if m == nil {
			return "", "malformed bcrypt hash"
		}
		cost, _ := strconv.Atoi(m[1])
		if cost < 4 || cost > maxBcryptCost {
			return "", fmt.Sprintf("bcrypt cost %d out of range 4-%d", cost, maxBcryptCost)
		}
		return "bcrypt:" + m[1], ""
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		m := shaCrypt.FindStringSubmatch(hash)
		want := map[string]int{"5": 43, "6": 86}
		if m == nil || len(m[3]) != want[m[1]] {
			return "", "malformed SHA-crypt hash"
		}
		rounds := 5000
		if m[2] != "" {
			rounds, _ = strconv.Atoi(m[2])
		}
		if rounds > maxCryptRounds {
			return "", fmt.Sprintf("SHA-crypt rounds %d above the maximum %d", rounds, maxCryptRounds)
		}
		return "sha" + m[1] + ":" + strconv.Itoa(max(rounds, 1000)), ""
	case strings.HasPrefix(hash, "$apr1$"):
		return "", "APR1-MD5 hash (htpasswd -m) is not accepted: weak; re-create the entry with htpasswd -B"
	case strings.HasPrefix(hash, "$1$"):
		return "", "MD5-crypt hash is not accepted: weak; re-create the entry with htpasswd -B"
	case strings.HasPrefix(hash, "{SHA}"):
		return "", "SHA-1 hash (htpasswd -s) is not accepted: unsalted; re-create the entry with htpasswd -B"
	case desRE.MatchString(hash):
		return "", "crypt(3) DES hash (htpasswd -d) is not accepted: weak; re-create the entry with htpasswd -B"
	}
	return "", "unknown hash format or plaintext password (htpasswd -p) is not accepted; re-create the entry with htpasswd -B"
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	b.mu.RLock()
	u := b.users
	b.mu.RUnlock()
	hash, ok := u.hashes[username]
	if !ok || !kisee.PlausibleUsername(username) {
		if u.dummy != "" {
			_, _ = b.hasher.Verify(ctx, u.dummy, pw)
		} else {
			b.hasher.Dummy(ctx, pw)
		}
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	// needsRehash is ignored: the file is the administrator's, Kisee never
	// writes it.
	_, err := b.hasher.Verify(ctx, hash, pw)
	switch {
	case err == nil:
		return kisee.User{ID: username, Username: username}, nil
	case errors.Is(err, password.ErrMismatch):
		return kisee.User{}, kisee.ErrInvalidCredentials
	case errors.Is(err, password.ErrUnknownFormat):
		// Not expected: parse only keeps formats the hasher verifies.
		b.logger.ErrorContext(ctx, "htpasswd entry cannot be verified", "user", username, "error", err)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	return kisee.User{}, fmt.Errorf("htpasswd: identify: %w", err)
}

// Health implements kisee.HealthChecker: the file can be read (if it
// cannot, logins still use the users loaded before, but the next change
// would not be seen).
func (b *Backend) Health(ctx context.Context) error {
	f, err := os.Open(b.path)
	if err != nil {
		return fmt.Errorf("htpasswd file: %w", err)
	}
	return f.Close()
}
