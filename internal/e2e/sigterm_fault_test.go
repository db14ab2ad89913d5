package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// outcome is what a client saw of one request.
type outcome struct {
	status   int
	complete bool // a whole answer was read, with a JSON body
	err      error
	at       time.Time // when it ended
}

// load runs clients that loop on requests made by req until the server
// refuses connections, each with its own X-Request-Id, on a new
// connection each (so that no request waits on an idle keep-alive
// connection the server is closing). It returns the outcome of every id.
func load(prefix string, clients int, req func(id string) *http.Request, stop <-chan struct{}) map[string]outcome {
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var mu sync.Mutex
	out := map[string]outcome{}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused := 0
			for n := 0; ; n++ {
				id := fmt.Sprintf("%s-%d-%d", prefix, i, n)
				r := req(id)
				r.Header.Set("X-Request-Id", id)
				resp, err := c.Do(r)
				o := outcome{err: err}
				if err == nil {
					var body map[string]any
					derr := json.NewDecoder(resp.Body).Decode(&body)
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					o.status, o.complete, o.err = resp.StatusCode, derr == nil, derr
				}
				o.at = time.Now()
				mu.Lock()
				out[id] = o
				mu.Unlock()
				if err != nil {
					refused++
					select {
					case <-stop:
						if refused > 3 {
							return
						}
					default:
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// handled returns the request ids and statuses of the access-log lines
// of a JSON log.
func handled(t *testing.T, logs, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	s := bufio.NewScanner(strings.NewReader(logs))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Status    int    `json:"status"`
		}
		if json.Unmarshal(s.Bytes(), &line) == nil && line.Msg == "request" && strings.HasPrefix(line.RequestID, prefix+"-") {
			out[line.RequestID] = line.Status
		}
	}
	return out
}

// TestSIGTERMUnderLoad sends SIGTERM to the built kisee, then to the
// built pasee, while 16 clients keep logging in (each login hashes a
// password with the production argon2id parameters, so that many are in
// flight at any time). Every request the server accepted — every request
// id its access log shows — got its complete answer with the logged
// status; the requests it did not answer were never accepted (their
// connection was refused); the process exits 0.
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	kp, pp := FreePort(t), FreePort(t)
	kiseeURL, paseeURL := fmt.Sprintf("http://127.0.0.1:%d", kp), fmt.Sprintf("http://127.0.0.1:%d", pp)
	key, err := Run(context.Background(), dir, bins["kisee"], "", "keygen")
	if err != nil {
		t.Fatal(key)
	}
	write(t, filepath.Join(dir, "kisee.toml"), fmt.Sprintf(`[server]
port = %d
trusted_proxies = ["127.0.0.1"]
[identity_backend]
class = "test"
[[identity_backend.options.users]]
username = "alice"
password = "alice password"
[storage]
url = "sqlite:kisee.db"
[rate_limit]
max_failures = 100000
[log]
format = "json"
[jwt]
private_key = '''%s'''
`, kp, key))
	pkey, err := Run(context.Background(), dir, bins["pasee"], "", "keygen")
	if err != nil {
		t.Fatal(pkey)
	}
	write(t, filepath.Join(dir, "pasee.toml"), fmt.Sprintf(`port = %d
[jwt]
private_key = '''%s'''
[storage]
url = "sqlite:pasee.db"
[rate_limit]
max_failures = 100000
[log]
format = "json"
[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = %q
`, pp, pkey, kiseeURL+"/"))
	kisee := Start(t, "kisee", bins["kisee"], dir, kiseeURL, nil, "--settings", "kisee.toml")
	pasee := Start(t, "pasee", bins["pasee"], dir, paseeURL, nil, "--settings-file", "pasee.toml")

	for _, c := range []struct {
		name string
		proc *Process
		req  func(id string) *http.Request
	}{
		{"pasee", pasee, func(string) *http.Request {
			r, _ := http.NewRequest("POST", paseeURL+"/tokens/?idp=kisee", strings.NewReader(`{"login":"alice","password":"alice password"}`))
			return r
		}},
		{"kisee", kisee, func(string) *http.Request {
			r, _ := http.NewRequest("POST", kiseeURL+"/jwt/", strings.NewReader(`{"username":"alice","password":"alice password"}`))
			return r
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			stop := make(chan struct{})
			var sigterm time.Time
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				time.Sleep(1500 * time.Millisecond)
				sigterm = time.Now()
				close(stop)
				c.proc.Stop(t) // SIGTERM, then a clean exit within 30 s
			}()
			// Ids per service: Pasee passes its request ids on to Kisee,
			// whose log therefore shows the Pasee phase's too.
			outcomes := load("load-"+c.name, 16, c.req, stop)
			<-stopped
			logged := handled(t, c.proc.Logs(), "load-"+c.name)
			if len(logged) < 16 {
				t.Fatalf("the server logged %d requests under load", len(logged))
			}
			drained, lost := 0, 0
			for id, status := range logged {
				o, ok := outcomes[id]
				switch {
				case !ok:
					t.Errorf("%s: the server handled %s, which no client sent", c.name, id)
				case !o.complete || o.status != status:
					lost++
					t.Errorf("%s: request %s was accepted (logged %d) but its answer was lost: %d %v", c.name, id, status, o.status, o.err)
				case o.at.After(sigterm):
					drained++
				}
				if status != 201 {
					t.Errorf("%s: request %s answered %d under load", c.name, id, status)
				}
			}
			refused := 0
			for id, o := range outcomes {
				if _, ok := logged[id]; !ok {
					refused++
					if o.err == nil {
						t.Errorf("%s: request %s got an answer (%d) the server did not log", c.name, id, o.status)
					}
				}
			}
			t.Logf("%s: %d requests accepted and answered (%d of them completed after SIGTERM, drained), %d refused after the listener closed, %d lost",
				c.name, len(logged), drained, refused, lost)
			if drained == 0 {
				t.Error("no request was in flight at SIGTERM: the drain was not exercised")
			}
		})
	}
}
