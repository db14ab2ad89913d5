package app

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// UpgradeSettings returns the settings file at path rewritten without the
// original Pasee's keys: each is replaced by what this Pasee reads (the
// same mapping, and the same errors, as at start). Comments are not kept;
// the values are.
func UpgradeSettings(path string) ([]byte, []LegacyKey, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read settings: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range cfg.Legacy {
		deletePath(doc, k.Key)
	}
	for _, k := range cfg.Legacy {
		for _, kv := range k.set {
			if err := setPath(doc, kv.key, kv.value); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", kv.key, err)
			}
		}
	}
	// PEM keys read best as multi-line literal strings, which go-toml does
	// not write for map values: write placeholders, then swap them.
	var multiline []string
	doc = withPlaceholders(doc, &multiline).(map[string]any)
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(false)
	if err := enc.Encode(doc); err != nil {
		return nil, nil, fmt.Errorf("write settings: %w", err)
	}
	out := placeholder.ReplaceAllStringFunc(buf.String(), func(m string) string {
		i, _ := strconv.Atoi(placeholder.FindStringSubmatch(m)[1])
		return "'''\n" + strings.TrimPrefix(multiline[i], "\n") + "'''"
	})
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	header := fmt.Sprintf("# Upgraded by `pasee settings upgrade %s`: the original Pasee's keys\n# are replaced (docs/migrating.md). Comments were not carried over.\n\n", path)
	return []byte(header + out), cfg.Legacy, nil
}

var placeholder = regexp.MustCompile(`["']@@multiline-(\d+)@@["']`)

func withPlaceholders(v any, acc *[]string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = withPlaceholders(e, acc)
		}
	case []any:
		for i, e := range v {
			v[i] = withPlaceholders(e, acc)
		}
	case string:
		if strings.Contains(v, "\n") && !strings.Contains(v, "'''") {
			*acc = append(*acc, v)
			return fmt.Sprintf("@@multiline-%d@@", len(*acc)-1)
		}
	}
	return v
}

// pathStep is one step of a dotted key: a name, and an index into an
// array of tables (-1 for none).
type pathStep struct {
	name  string
	index int
}

func parsePath(key string) []pathStep {
	var out []pathStep
	for _, part := range strings.Split(key, ".") {
		st := pathStep{name: part, index: -1}
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			if n, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil {
				st = pathStep{name: part[:i], index: n}
			}
		}
		out = append(out, st)
	}
	return out
}

// table walks doc along steps, creating missing tables when create is set.
func table(doc map[string]any, steps []pathStep, create bool) map[string]any {
	cur := doc
	for _, st := range steps {
		next, ok := cur[st.name]
		if !ok {
			if !create || st.index >= 0 {
				return nil
			}
			m := map[string]any{}
			cur[st.name] = m
			cur = m
			continue
		}
		if st.index >= 0 {
			arr, ok := next.([]any)
			if !ok || st.index >= len(arr) {
				return nil
			}
			next = arr[st.index]
		}
		m, ok := next.(map[string]any)
		if !ok {
			return nil
		}
		cur = m
	}
	return cur
}

func deletePath(doc map[string]any, key string) {
	steps := parsePath(key)
	if t := table(doc, steps[:len(steps)-1], false); t != nil {
		delete(t, steps[len(steps)-1].name)
	}
}

func setPath(doc map[string]any, key string, value any) error {
	steps := parsePath(key)
	t := table(doc, steps[:len(steps)-1], true)
	if t == nil {
		return fmt.Errorf("no table to hold the key")
	}
	t[steps[len(steps)-1].name] = value
	return nil
}
