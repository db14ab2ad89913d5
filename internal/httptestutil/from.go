package httptestutil

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// ClientFrom is an HTTP client whose connections come from the loopback
// address ip (every 127.0.0.x is a local address on Linux), so that one
// test can be many clients, each seen by the server at its own address.
func ClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: time.Minute}
}

// PostFrom posts the JSON body to url from ip, with headers given as name,
// value pairs, and returns the status (0 after reporting an error).
func PostFrom(t testing.TB, ip, url, body string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	c := ClientFrom(ip)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// ParallelFrom posts body(i) for i in [0, n) to url from ip, all at once,
// and counts the answers by status.
func ParallelFrom(t testing.TB, n int, ip, url string, body func(i int) string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s := PostFrom(t, ip, url, body(i))
			mu.Lock()
			got[s]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return got
}
