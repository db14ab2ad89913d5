package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/pkg/token"
)

// StatusCheck is one health check of the status page.
type StatusCheck struct {
	Name  string
	Check func(context.Context) error
}

// StatusKey is a published key and where it came from.
type StatusKey struct {
	Key  *token.PublicKey
	Role string // "current", "next" or "previous"
	// File, when the key was read from a file, gives its age.
	File string
}

// StatusPage is the /status page: a page a person reads (HTML), and the
// same as JSON for machines (Accept: application/json or ?format=json).
type StatusPage struct {
	Title    string // "Kisee" or "Pasee"
	Version  string
	Started  time.Time
	Checks   []StatusCheck
	Keys     []StatusKey
	Counters []StatusCounter
	Now      func() time.Time
}

// StatusCounter is an event count over the last hour.
type StatusCounter struct {
	Name    string
	Counter *RollingCounter
}

// Status is the JSON form of the page.
type Status struct {
	Service  string           `json:"service"`
	Version  string           `json:"version"`
	Started  time.Time        `json:"started_at"`
	Uptime   string           `json:"uptime"`
	Healthy  bool             `json:"healthy"`
	Checks   []CheckStatus    `json:"checks"`
	Keys     []KeyStatus      `json:"keys"`
	LastHour map[string]int64 `json:"last_hour"`
	Order    []string         `json:"-"`
}

// CheckStatus is one check's result; its cause is logged, not shown.
type CheckStatus struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// KeyStatus describes a published key.
type KeyStatus struct {
	KID       string `json:"kid"`
	Algorithm string `json:"alg"`
	Role      string `json:"role"`
	Age       string `json:"age,omitempty"`
	CreatedAt string `json:"created_at,omitempty"`
}

// statusCSS is the page's only style; the CSP allows exactly it.
const statusCSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:46rem;padding:1rem;color:#1a1a1a}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
code{font-size:.85rem;word-break:break-all}.ok{color:#0a6b2a;font-weight:600}.ko{color:#a4000f;font-weight:600}
@media (prefers-color-scheme:dark){body{background:#121212;color:#eee}th,td{border-color:#333}.ok{color:#5fd38a}.ko{color:#ff7a85}}`

var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Service}} status</title><style>` + statusCSS + `</style></head>
<body><main>
<h1>{{.Service}} status: {{if .Healthy}}<span class="ok">healthy</span>{{else}}<span class="ko">unhealthy</span>{{end}}</h1>
<p>Version <strong>{{.Version}}</strong>, up {{.Uptime}} (since {{.Started.UTC.Format "2006-01-02 15:04:05 MST"}}).
<a href="?format=json">This page as JSON</a>.</p>
<h2>Health</h2>
<table><thead><tr><th scope="col">Check</th><th scope="col">State</th></tr></thead><tbody>
{{range .Checks}}<tr><td>{{.Name}}</td><td>{{if .OK}}<span class="ok">OK</span>{{else}}<span class="ko">failing</span>{{end}}</td></tr>
{{end}}</tbody></table>
<h2>Signing keys</h2>
<table><thead><tr><th scope="col">Key id</th><th scope="col">Algorithm</th><th scope="col">Role</th><th scope="col">Age</th></tr></thead><tbody>
{{range .Keys}}<tr><td><code>{{.KID}}</code></td><td>{{.Algorithm}}</td><td>{{.Role}}</td><td>{{if .Age}}{{.Age}}{{else}}unknown{{end}}</td></tr>
{{end}}</tbody></table>
<h2>Last hour</h2>
<table><thead><tr><th scope="col">Events</th><th scope="col">Count</th></tr></thead><tbody>
{{range $name := .Order}}<tr><td>{{$name}}</td><td>{{index $.LastHour $name}}</td></tr>
{{end}}</tbody></table>
</main></body></html>
`))

// statusCSP allows the page's inline style and nothing else.
var statusCSP = func() string {
	sum := sha256.Sum256([]byte(statusCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

// Collect runs the checks and reads the counters.
func (p *StatusPage) Collect(ctx context.Context) Status {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	st := Status{Service: p.Title, Version: p.Version, Started: p.Started.UTC(), Healthy: true, LastHour: map[string]int64{},
		Uptime: now().Sub(p.Started).Truncate(time.Second).String()}
	for _, c := range p.Checks {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ok := c.Check(cctx) == nil
		cancel()
		st.Healthy = st.Healthy && ok
		st.Checks = append(st.Checks, CheckStatus{Name: c.Name, OK: ok})
	}
	for _, k := range p.Keys {
		ks := KeyStatus{KID: k.Key.KeyID(), Algorithm: string(k.Key.Algorithm()), Role: k.Role}
		if k.File != "" {
			if info, err := os.Stat(k.File); err == nil {
				ks.CreatedAt = info.ModTime().UTC().Format(time.RFC3339)
				ks.Age = humanAge(now().Sub(info.ModTime()))
			}
		}
		st.Keys = append(st.Keys, ks)
	}
	for _, c := range p.Counters {
		st.LastHour[c.Name] = c.Counter.LastHour()
		st.Order = append(st.Order, c.Name)
	}
	return st
}

func humanAge(d time.Duration) string {
	switch {
	case d < time.Hour:
		return d.Truncate(time.Minute).String()
	case d < 48*time.Hour:
		return d.Truncate(time.Hour).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// Handler serves the page: HTML by default, JSON when asked.
func (p *StatusPage) Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		st := p.Collect(c.Request().Context())
		status := http.StatusOK
		if !st.Healthy {
			status = http.StatusServiceUnavailable
		}
		accept := c.Request().Header.Get(echo.HeaderAccept)
		if c.QueryParam("format") == "json" || (strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")) {
			return c.JSON(status, st)
		}
		var b strings.Builder
		if err := statusTemplate.Execute(&b, st); err != nil {
			return err
		}
		c.Response().Header().Set("Content-Security-Policy", statusCSP)
		return c.HTML(status, b.String())
	}
}
