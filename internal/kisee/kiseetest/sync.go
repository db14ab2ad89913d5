package kiseetest

import (
	"strings"
	"sync"
)

// syncWriter lets concurrent log writes share a strings.Builder.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
