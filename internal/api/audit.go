package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log: who did what, to what, when,
// from where, and how it ended.
type AuditEntry struct {
	Time    time.Time `json:"time"`
	Who     string    `json:"who"` // the token's name ("cluster": the cluster token)
	Remote  string    `json:"remote,omitempty"`
	Action  string    `json:"action"` // job.submit, job.stop, token.create, actor.kill, login, denied, …
	Target  string    `json:"target"`
	Outcome string    `json:"outcome"`
}

// AuditRecent is how many entries Recent keeps in memory.
const AuditRecent = 1000

// Audit is the audit log: every job submission and every mutation through
// the API, appended as a JSON line to a file (0600) and kept in memory for
// the newest AuditRecent.
type Audit struct {
	mu     sync.Mutex
	f      *os.File     // guarded by mu; nil: no file
	recent []AuditEntry // guarded by mu; ring, oldest first
}

// OpenAudit opens (appends to) the audit log at path; empty: memory only.
func OpenAudit(path string) (*Audit, error) {
	a := &Audit{}
	if path == "" {
		return a, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("api: audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("api: audit log: %w", err)
	}
	a.f = f
	return a, nil
}

// Record appends an entry for request r.
func (a *Audit) Record(r *http.Request, who Principal, action, target, outcome string) {
	e := AuditEntry{Time: time.Now().UTC(), Who: who.Name, Action: action, Target: target, Outcome: outcome}
	if r != nil {
		e.Remote = r.RemoteAddr
	}
	a.Add(e)
}

// Add appends an entry.
func (a *Audit) Add(e AuditEntry) {
	line, _ := json.Marshal(e)
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f != nil {
		_, _ = a.f.Write(line)
	}
	if len(a.recent) >= AuditRecent {
		a.recent = append(a.recent[:0], a.recent[1:]...)
	}
	a.recent = append(a.recent, e)
}

// Recent returns the newest entries, oldest first.
func (a *Audit) Recent() []AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AuditEntry(nil), a.recent...)
}

// Close closes the file.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}
