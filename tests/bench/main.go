// Command bench measures Kisee and Pasee against what the machine allows
// (issue 8). It starts the built binaries (bin/kisee, bin/pasee) on free
// loopback ports with generated settings, on SQLite files in a temporary
// directory and on fresh PostgreSQL schemas, loads them with keep-alive
// clients bounded in requests and time, and reports every figure as a
// ratio to a bound measured in the same run on the same machine:
//
//  1. Kisee POST /jwt/ (sql backend) vs the argon2id verification rate of
//     internal/password at the production parameters on all cores;
//  2. Pasee POST /tokens/?refresh vs the ES256 rate of 1 verify + 2 signs,
//     with Pasee's CPU time per refresh next to the crypto's, and on
//     PostgreSQL two Pasee instances sharing the store (scale-out);
//  3. Pasee login through Kisee vs Kisee alone;
//  4. group scale: 100k groups and 1M memberships bulk-loaded, then the p99
//     of a refresh for a user in 200 groups, of admin checks at depth 6 and
//     of GET /groups/?user=;
//  5. the downstream verification middleware (pkg/verify) vs raw ES256
//     verification;
//  6. idle RSS and cold start of each binary on SQLite.
//  7. Pasee as an OpenID Provider: the authorization code round trip
//     (authorize, login page, code, token endpoint) next to the login
//     through Kisee, and the token endpoint's refresh grant next to
//     POST /tokens/?refresh, on the same store in the same run.
//
// It also profiles the servers in-process (internal/kisee/app, internal/pasee/app:
// the binaries' wiring) and writes the figures, the plots and the top
// functions into docs/benchmarks.md between markers, keeping the analysis
// around them. Everything it starts — processes, temporary files,
// PostgreSQL schemas — is removed at exit, on error and on Ctrl-C too.
//
// Usage (make bench builds the binaries first):
//
//	go run ./bench [-quick] [-bin bin] [-out docs/benchmarks.md] [-pg URL|off] [-skip-groups] ...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	bin, out, plots, pg, logLevel, profileDir, only string
	dex                                             string
	refreshLevels                                   string
	quick, skipGroups, groupsSQLite, profile        bool
	groups, memberships, restarts, retries          int
	paseeProcs                                      int
	timeout                                         time.Duration
}

// parseFlags reads the command line; -quick changes the defaults of the
// flags it does not set.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	defaultPG := os.Getenv("PASEE_TEST_POSTGRES_URL")
	if defaultPG == "" {
		defaultPG = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	fs.StringVar(&o.bin, "bin", "bin", "directory of the kisee and pasee binaries")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to write the figures into (between markers); empty: none")
	fs.StringVar(&o.plots, "plots", "docs/benchmarks", "directory of the PNG plots")
	fs.StringVar(&o.pg, "pg", defaultPG, "PostgreSQL server on the loopback interface (a fresh schema per store); \"off\" to skip PostgreSQL")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level of the servers (their logs go to files in the temporary directory)")
	fs.StringVar(&o.profileDir, "profile-dir", "", "keep the .pprof files in this directory (default: discarded with the temporary directory)")
	fs.StringVar(&o.only, "only", "", "run only these scenarios, comma-separated: 1 (with 2, 3, 5 and 7), 2 (the refreshes alone: 2 and 7's refresh grant), 4, 6, profile")
	fs.StringVar(&o.dex, "dex", "", "a Dex binary (github.com/dexidp/dex, built from its source) whose refresh grant is measured after each PostgreSQL refresh level; empty: none")
	fs.IntVar(&o.paseeProcs, "pasee-gomaxprocs", 0, "GOMAXPROCS of the Pasee processes (0: Go's default, every core)")
	fs.StringVar(&o.refreshLevels, "refresh-levels", "", "concurrency levels of the refresh scenarios, comma-separated (default 1,2,4,8,16,32)")
	fs.BoolVar(&o.quick, "quick", false, "fewer levels, shorter runs, no group scale, no profiles (about a minute)")
	fs.BoolVar(&o.skipGroups, "skip-groups", false, "skip scenario 4 (group scale), the longest part")
	fs.BoolVar(&o.groupsSQLite, "groups-sqlite", true, "run scenario 4 on SQLite too (it always runs on PostgreSQL when available)")
	fs.BoolVar(&o.profile, "profile", true, "profile the servers in-process")
	fs.IntVar(&o.groups, "groups", 100_000, "groups in scenario 4 (staff groups included)")
	fs.IntVar(&o.memberships, "memberships", 1_000_000, "memberships in scenario 4")
	fs.IntVar(&o.restarts, "restarts", 5, "restarts per binary for the cold start time")
	fs.IntVar(&o.retries, "retries", 1, "times a level is measured again when other processes took more than 25% of the machine")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "stop everything after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick {
		if !set["skip-groups"] {
			o.skipGroups = true
		}
		if !set["profile"] {
			o.profile = false
		}
		if !set["restarts"] {
			o.restarts = 3
		}
	}
	if o.pg == "off" {
		o.pg = ""
	}
	return o, nil
}

// runs reports whether scenario name is to run.
func (o options) runs(name string) bool {
	if o.only == "" {
		return true
	}
	for _, s := range strings.Split(o.only, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// plan is the load of each scenario, smaller in quick mode.
func (o options) plan() Plan {
	p := o.basePlan()
	if o.refreshLevels != "" {
		p.RefreshLevels = nil
		for _, f := range strings.Split(o.refreshLevels, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				p.RefreshLevels = append(p.RefreshLevels, n)
			}
		}
	}
	// -only 2: the refreshes without the logins around them.
	p.SkipLogins = !o.runs("1")
	return p
}

func (o options) basePlan() Plan {
	if o.quick {
		return Plan{
			LoginLevels: []int{1, 2, 8}, RefreshLevels: []int{1, 4, 16},
			LoginRequests: 60, RefreshRequests: 2000, LevelTime: 1500 * time.Millisecond,
			BoundTime: time.Second, PairTime: 500 * time.Millisecond, Users: 32,
			GroupRequests: 500, Retries: o.retries, Disturbed: 0.25,
		}
	}
	return Plan{
		LoginLevels: []int{1, 2, 4, 8}, RefreshLevels: []int{1, 2, 4, 8, 16, 32},
		LoginRequests: 200, RefreshRequests: 6000, LevelTime: 3 * time.Second,
		BoundTime: 2 * time.Second, PairTime: time.Second, Users: 64,
		GroupRequests: 1000, Retries: o.retries, Disturbed: 0.25,
	}
}

// main runs the benchmark and exits with its status.
func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the benchmark with args and returns the exit status: 0, 1 when
// a scenario failed, 2 for a bad command line.
func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	env, err := NewEnv(ctx, o.bin, o.pg, o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer env.Close()
	if o.paseeProcs > 0 {
		env.PaseeEnv = append(env.PaseeEnv, fmt.Sprintf("GOMAXPROCS=%d", o.paseeProcs))
	}
	if o.dex != "" {
		if env.Dex, err = exec.LookPath(o.dex); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -dex:", err)
			return 2
		}
		if env.Dex, err = filepath.Abs(env.Dex); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -dex:", err)
			return 2
		}
	}
	rep, err := measure(ctx, env, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.out != "" {
		if err := rep.WritePlots(o.plots, o.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench: plots:", err)
			return 1
		}
		if err := WriteInto(o.out, rep.Markdown()); err != nil {
			fmt.Fprintln(os.Stderr, "bench: report:", err)
			return 1
		}
		logf("figures written into %s, plots into %s", o.out, o.plots)
	} else {
		fmt.Println(rep.Markdown())
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d scenario(s) failed:\n  %s\n", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
		return 1
	}
	return 0
}

// measure runs the scenarios. A scenario that fails is recorded and the
// others still run; only an interruption stops the run.
func measure(ctx context.Context, env *Env, o options) (*Report, error) {
	plan := o.plan()
	rep := &Report{Started: time.Now(), Command: "go run ./bench " + strings.Join(os.Args[1:], " ")}
	rep.Machine = MachineInfo(ctx, env.PG)
	if env.Dex != "" {
		rep.Machine.Dex = dexVersion(ctx, env.Dex)
	}
	rep.Machine.PaseeProcs = o.paseeProcs
	logf("bench: %s, %d cores, %s; servers from %s; temporary directory %s", rep.Machine.CPU, rep.Machine.Cores, rep.Machine.Go, env.Bin, env.Dir)
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: interrupted: %w", what, context.Cause(ctx))
		}
		logf("FAILED %s: %v", what, err)
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", what, firstLine(err)))
		return nil
	}
	hashing, err := NewHashing(ctx)
	if err != nil {
		return rep, err
	}
	es256, err := NewES256(ctx)
	if err != nil {
		return rep, err
	}
	paired := Bounds{Hash: hashing, Crypto: es256, HashTime: plan.PairTime, CryptoTime: plan.PairTime}
	bounds := func() error {
		logf("bounds: argon2id and ES256 on %d cores", rep.Machine.GOMAXPROCS)
		h, err := interleaved(ctx, 2, plan.BoundTime, func() error {
			_, err := hashing.h.Verify(ctx, hashing.enc, benchPassword)
			return err
		})
		if err != nil {
			return fail("argon2id bound", err)
		}
		c, err := es256.Bounds(ctx, plan.BoundTime)
		if err != nil {
			return fail("ES256 bounds", err)
		}
		rep.HashBounds = append(rep.HashBounds, h[0])
		rep.CryptoBounds = append(rep.CryptoBounds, c)
		logf("  argon2id %.1f/s (%s CPU each); ES256 raw verify %.0f/s, raw refresh %.0f/s (%s CPU); pkg/token verify %.0f/s, refresh %.0f/s",
			h[0].PerSec, h[0].CPUPerOp.Round(time.Microsecond), c.RawVerify.PerSec, c.RawRefresh.PerSec, c.RawRefresh.CPUPerOp.Round(time.Microsecond),
			c.TokenVerify.PerSec, c.TokenRefresh.PerSec)
		return nil
	}
	if err := bounds(); err != nil {
		return rep, err
	}
	for _, backend := range env.Backends() {
		if !o.runs("1") && !o.runs("2") {
			break
		}
		verifyHook := func(paseeURL, access string) {
			if rep.Verify != nil {
				return
			}
			v, err := RunVerify(ctx, plan, paseeURL, access, 2*plan.BoundTime)
			if err != nil {
				_ = fail("scenario 5", err)
				return
			}
			rep.Verify = &v
			rep.VerifyNote = "Measured with `pkg/verify` (its `Verifier` and echo `Middleware`); `token.Verifier` alone for comparison."
		}
		res, err := RunServices(ctx, env, plan, paired, backend, verifyHook)
		if len(res.KiseeLogin)+len(res.PaseeLogin)+len(res.Refresh) > 0 {
			rep.Backends = append(rep.Backends, res)
		}
		if err != nil {
			if err := fail("scenarios 1–3 on "+backend, err); err != nil {
				return rep, err
			}
		}
	}
	if o.runs("6") {
		fp, err := RunFootprint(ctx, env, o.restarts)
		if err != nil {
			if err := fail("scenario 6", err); err != nil {
				return rep, err
			}
		}
		rep.Footprint = fp
	}
	if !o.skipGroups && o.runs("4") {
		var backends []string
		if env.PG != "" {
			backends = append(backends, "postgres")
		}
		if o.groupsSQLite {
			backends = append(backends, "sqlite")
		}
		for _, b := range backends {
			g, err := RunGroups(ctx, env, plan, b, GroupScale{Groups: o.groups, Memberships: o.memberships})
			if len(g.Cases) > 0 {
				rep.Groups = append(rep.Groups, g)
			}
			if err != nil {
				if err := fail("scenario 4 on "+b, err); err != nil {
					return rep, err
				}
			}
		}
	}
	if o.profile && o.runs("profile") {
		backend := "sqlite"
		if env.PG != "" {
			backend = "postgres"
		}
		p := Profiler{Dir: o.profileDir, Top: 12}
		profiles, err := RunProfiles(ctx, env, p, backend, 2*plan.LevelTime)
		rep.Profiles = profiles
		if err != nil {
			if err := fail("profiles", err); err != nil {
				return rep, err
			}
		}
	}
	if err := bounds(); err != nil {
		return rep, err
	}
	rep.Wall = time.Since(rep.Started)
	return rep, nil
}

// firstLine keeps an error's first line (process logs follow it).
func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
