package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runCLI runs a built binary in an empty directory with an empty HOME and
// returns its stdout, stderr and exit status, and what it left in the
// directory.
func runCLI(t *testing.T, bin string, args ...string) (stdout, stderr string, code int, left []string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader("")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v", bin, args, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	return out.String(), errOut.String(), code, left
}

// cliCommands are the subcommands of each binary, with a line that would
// do something if help were not asked for (a user name, a group).
var cliCommands = map[string][][]string{
	"kisee": {
		{"serve"}, {"quickstart"}, {"useradd", "alice"}, {"passwd", "alice"}, {"migrate"},
		{"healthcheck"}, {"keygen"}, {"version"},
	},
	"pasee": {
		{"serve"}, {"append", "--groups", "staff", "kisee-alice"}, {"remove", "--groups", "staff", "kisee-alice"},
		{"groups", "kisee-alice"}, {"groups"}, {"migrate"}, {"healthcheck"}, {"keygen"}, {"version"},
		{"settings", "upgrade", "settings.toml"}, {"import", "--from", "sqlite:original.db"},
	},
}

// -h, --help and help, on the binaries and on every subcommand, wherever
// they stand: the usage of that command on stdout, status 0, and nothing
// done (no database, key or settings file created, no server started).
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	for name, commands := range cliCommands {
		bin := bins[name]
		for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"-help"}} {
			out, errOut, code, left := runCLI(t, bin, args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: "+name+" [") || !strings.Contains(out, "Commands:") || len(left) > 0 {
				t.Errorf("%s %q: status %d, stdout %q, stderr %q, left %v", name, args, code, out, errOut, left)
			}
		}
		for _, line := range commands {
			cmd := line[0]
			want := "Usage: " + name + " " + cmd
			for _, args := range [][]string{
				append(append([]string{}, line...), "--help"),
				append(append([]string{}, line...), "-h"),
				append([]string{line[0], "--help"}, line[1:]...),
				append([]string{"help"}, line...),
				append([]string{"--help"}, line...), // help before the command is the command's
			} {
				out, errOut, code, left := runCLI(t, bin, args...)
				firstLine, _, _ := strings.Cut(out, "\n")
				if code != 0 || errOut != "" || !strings.HasPrefix(firstLine, want) || len(left) > 0 {
					t.Errorf("%s %q: status %d, stdout %q, stderr %q, left %v; want %q on stdout and nothing done",
						name, args, code, out, errOut, left, want)
				}
			}
		}
	}
}

// A flag or command the binary does not know: the error first, then the
// usage, on stderr; status 2; nothing on stdout and nothing done.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		bin   string
		args  []string
		err   string // the first line of stderr contains it
		usage string // the usage that follows
	}{
		{"kisee", []string{"--bogus"}, "-bogus", "Usage: kisee ["},
		{"kisee", []string{"frobnicate"}, `unknown command "frobnicate"`, "Usage: kisee ["},
		{"kisee", []string{"migrate", "--bogus"}, "-bogus", "Usage: kisee migrate"},
		{"kisee", []string{"migrate", "now"}, `unexpected argument "now"`, "Usage: kisee migrate"},
		{"kisee", []string{"useradd"}, "missing argument", "Usage: kisee useradd"},
		{"kisee", []string{"useradd", "alice", "--emial", "a@example.com"}, "-emial", "Usage: kisee useradd"},
		{"kisee", []string{"serve", "extra"}, `unexpected argument "extra"`, "Usage: kisee serve"},
		{"kisee", []string{"--settings"}, "--settings needs a value", "Usage: kisee ["},
		{"pasee", []string{"--bogus"}, "-bogus", "Usage: pasee ["},
		{"pasee", []string{"frobnicate"}, `unknown command "frobnicate"`, "Usage: pasee ["},
		{"pasee", []string{"migrate", "-x"}, "-x", "Usage: pasee migrate"},
		{"pasee", []string{"groups", "kisee-alice", "kisee-bob"}, `unexpected argument "kisee-bob"`, "Usage: pasee groups"},
		{"pasee", []string{"append", "kisee-alice"}, "--groups is required", "Usage: pasee append"},
		{"pasee", []string{"keygen", "--alg"}, "-alg", "Usage: pasee keygen"},
		{"pasee", []string{"import"}, "missing --from URL", "Usage: pasee import"},
		{"pasee", []string{"settings", "downgrade", "x.toml"}, `unknown settings command "downgrade"`, "Usage: pasee settings"},
	} {
		out, errOut, code, left := runCLI(t, bins[c.bin], c.args...)
		first, rest, _ := strings.Cut(errOut, "\n")
		if code != 2 || out != "" || !strings.HasPrefix(first, c.bin+": ") || !strings.Contains(first, c.err) ||
			!strings.HasPrefix(strings.TrimLeft(rest, "\n"), c.usage) || len(left) > 0 {
			t.Errorf("%s %q: status %d, stdout %q, stderr %q, left %v; want status 2, %q then %q on stderr",
				c.bin, c.args, code, out, errOut, left, c.err, c.usage)
		}
	}
}

// Both spellings of the settings flag work on both binaries, and the
// usage names both.
func TestCLISettingsFlagSpellings(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"kisee", "pasee"} {
		out, _, _, _ := runCLI(t, bins[name], "--help")
		if !strings.Contains(out, "--settings FILE") || !strings.Contains(out, "--settings-file FILE") {
			t.Errorf("%s --help does not name --settings and --settings-file:\n%s", name, out)
		}
		for _, flag := range []string{"--settings", "--settings-file"} {
			_, errOut, code, _ := runCLI(t, bins[name], flag, "/nonexistent/settings.toml", "migrate")
			if code != 1 || !strings.Contains(errOut, "/nonexistent/settings.toml") {
				t.Errorf("%s %s FILE migrate: status %d, stderr %q; want the file named", name, flag, code, errOut)
			}
		}
	}
}
