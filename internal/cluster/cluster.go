// Package cluster tells Switchboard replicas which of them holds a stateful
// MCP session, so that a request landing on another replica can be passed to
// the one that has it: a Directory maps a session id to its owner (the
// replica's internal URL and the user who opened it), in memory for one
// process or in Redis for replicas that share it.
//
// It imports nothing internal; gateway and cmd/switchboard import it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrNotFound: no replica holds the session (never claimed, released or
// expired).
var ErrNotFound = errors.New("cluster: session not found")

// Owner is who holds a session.
type Owner struct {
	// Replica is the internal base URL of the replica holding the
	// session, e.g. "http://10.0.0.5:8080".
	Replica string `json:"r"`
	// User is the id of the user who opened the session ("" for
	// anonymous), so that any replica can refuse it to anyone else.
	User string `json:"u"`
}

// Directory maps session ids to their owners. Entries expire ttl after
// their last Claim unless claimed again; holders re-claim sessions in use.
type Directory interface {
	// Claim records (or refreshes) o as the owner of sessionID for ttl.
	Claim(ctx context.Context, sessionID string, o Owner, ttl time.Duration) error
	// Lookup returns the owner of sessionID, or ErrNotFound.
	Lookup(ctx context.Context, sessionID string) (Owner, error)
	// Release forgets sessionID. Releasing an unknown session is not an error.
	Release(ctx context.Context, sessionID string) error
}

// Memory is a Directory in one process's memory, for a single replica and
// for tests. The zero value is not usable; call NewMemory.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex // guards entries
	entries map[string]memoryEntry
}

type memoryEntry struct {
	owner   Owner
	expires time.Time
}

var _ Directory = (*Memory)(nil)

// NewMemory returns an empty in-memory directory. now is the clock; nil:
// time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, entries: map[string]memoryEntry{}}
}

// Claim implements Directory.
func (m *Memory) Claim(_ context.Context, sessionID string, o Owner, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("cluster: claim with ttl %v", ttl)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Expired entries go now and then, so that the map stays as large as
	// the sessions in use.
	if len(m.entries)%1024 == 1023 {
		for id, e := range m.entries {
			if !now.Before(e.expires) {
				delete(m.entries, id)
			}
		}
	}
	m.entries[sessionID] = memoryEntry{owner: o, expires: now.Add(ttl)}
	return nil
}

// Lookup implements Directory.
func (m *Memory) Lookup(_ context.Context, sessionID string) (Owner, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[sessionID]
	if !ok || !now.Before(e.expires) {
		return Owner{}, ErrNotFound
	}
	return e.owner, nil
}

// Release implements Directory.
func (m *Memory) Release(_ context.Context, sessionID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, sessionID)
	return nil
}
