// Package cmdline holds what the kisee and pasee commands share: the
// settings flag accepted before or after the subcommand, and reading a
// password from the terminal or from standard input (never from argv).
package cmdline

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/kisee-pasee/suite/pkg/token"
)

// ExtractFlag removes every occurrence of one of names ("--settings",
// "--settings-file") with its value from args, wherever it stands, and
// returns the last value. Both "--name value" and "--name=value" work.
func ExtractFlag(args []string, names ...string) (value string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		matched := false
		for _, n := range names {
			switch {
			case a == n || a == "-"+strings.TrimPrefix(n, "--"):
				if i+1 >= len(args) {
					return "", nil, fmt.Errorf("%s needs a value", n)
				}
				value = args[i+1]
				i++
				matched = true
			case strings.HasPrefix(a, n+"="):
				value = strings.TrimPrefix(a, n+"=")
				matched = true
			}
			if matched {
				break
			}
		}
		if !matched {
			rest = append(rest, a)
		}
	}
	return value, rest, nil
}

// ExtractBool removes a boolean flag (--name) from args and reports whether it was there.
func ExtractBool(args []string, name string) (bool, []string) {
	var rest []string
	found := false
	for _, a := range args {
		if a == name || a == "-"+strings.TrimPrefix(name, "--") || a == name+"=true" {
			found = true
			continue
		}
		rest = append(rest, a)
	}
	return found, rest
}

// ReadPassword returns a new password: the first line of stdin when
// fromStdin, else typed twice on the terminal. It refuses to read a
// password from a non-terminal without --password-stdin, so that scripts
// say what they mean.
func ReadPassword(stdin io.Reader, fromStdin bool, prompt io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on standard input")
		}
		return pw, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: pass --password-stdin and write the password to standard input")
	}
	fmt.Fprint(prompt, "New password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(prompt, "Repeat it: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	if len(a) == 0 {
		return "", errors.New("empty password")
	}
	return string(a), nil
}

// IsTerminal reports whether r is an interactive terminal.
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Parse parses flags anywhere among args ("useradd alice --email a@x"),
// returning the positional arguments.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// Keygen prints a fresh private key in PEM to p.Out, for `kisee keygen`
// and `pasee keygen` [--alg ES256|ES384|ES256K|EdDSA|RS256].
func Keygen(p *Program, args []string) error {
	fs := p.Command("keygen", "[--alg ALG]", "Print a fresh private key in PEM, for a settings file's private_key.")
	alg := fs.String("alg", "ES256", "algorithm: ES256, ES384, ES256K, EdDSA or RS256")
	if _, err := fs.Args(args, 0, 0); err != nil {
		return err
	}
	a, err := token.ParseAlgorithm(*alg)
	if err != nil {
		return err
	}
	k, err := token.GenerateKey(a)
	if err != nil {
		return err
	}
	priv, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	_, err = p.Out.Write(priv)
	return err
}

// Healthcheck asks url (a service's /health) whether it is green, for
// container health probes that have no curl: `kisee healthcheck`.
func Healthcheck(ctx context.Context, url string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, resp.StatusCode)
	}
	fmt.Fprintln(out, "healthy")
	return nil
}

// LocalURL is the URL a process on the same host reaches a service
// listening on host:port at ("0.0.0.0" and "::" become loopback).
func LocalURL(host string, port int, path string) string {
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
}
