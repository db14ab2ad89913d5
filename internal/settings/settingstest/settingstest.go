// Package settingstest reads the settings examples of the documentation,
// so that tests can load them: README's TOML must be what the binaries
// accept.
package settingstest

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Block is a TOML code block of a Markdown file.
type Block struct {
	Section string // the heading above it
	Line    int    // line of its opening fence
	Text    string
}

// TOMLBlocks returns the ```toml blocks of the Markdown file at path that
// sit under one of the headings given (exact heading text, without #).
func TOMLBlocks(t testing.TB, path string, headings ...string) []Block {
	t.Helper()
	return Blocks(t, path, "toml", headings...)
}

// Blocks returns the code blocks of language lang ("" for plain ```)
// of the Markdown file at path under one of the headings given.
func Blocks(t testing.TB, path, lang string, headings ...string) []Block {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Block
	var section string
	var cur *Block
	inside := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		switch {
		case inside && fence:
			if cur != nil {
				out = append(out, *cur)
			}
			inside, cur = false, nil
		case inside:
			if cur != nil {
				cur.Text += line + "\n"
			}
		case fence:
			inside = true
			if strings.TrimSpace(line) == "```"+lang && slices.Contains(headings, section) {
				cur = &Block{Section: section, Line: n}
			}
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no %q block under %q", path, lang, headings)
	}
	return out
}

var fileKey = regexp.MustCompile(`(?m)^(\s*\w+_file\s*=\s*)"[^"]*"`)

// WithSecretFiles rewrites the "_file" paths of a documented example (they
// name files of the reader's machine) to a file of the test holding
// "secret", and returns the result.
func WithSecretFiles(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fileKey.ReplaceAllString(text, `${1}"`+filepath.ToSlash(path)+`"`)
}

// CommandsOf returns the command words of a CLI synopsis block: the second
// word of each line starting with bin, and the words after "|" on it.
func CommandsOf(synopsis, bin string) []string {
	var cmds []string
	for _, line := range strings.Split(synopsis, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != bin {
			continue
		}
		for i, w := range f[1:] {
			if i == 0 || f[i] == "|" {
				if !strings.HasPrefix(w, "[") && !strings.HasPrefix(w, "-") {
					cmds = append(cmds, w)
				}
			}
		}
	}
	return cmds
}

// UsageCommands returns the commands of a binary's usage text: the first
// word of each line indented by exactly two spaces (continuations are
// indented more), flags and "(none)" aside.
func UsageCommands(usage string) []string {
	var cmds []string
	for _, line := range strings.Split(usage, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(line, "  ") && line[2] != ' ' && !strings.HasPrefix(f[0], "-") && !strings.HasPrefix(f[0], "(") {
			cmds = append(cmds, f[0])
		}
	}
	return cmds
}
