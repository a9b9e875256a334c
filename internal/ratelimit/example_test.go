package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

func ExampleMemory() {
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := start
	l := ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: func() time.Time { return now }})
	for i := range 3 {
		ok, retry, _ := l.Allow(ctx, "register:203.0.113.7", 2, time.Minute)
		fmt.Println(i, ok, retry)
		now = now.Add(10 * time.Second)
	}
	// Output:
	// 0 true 0s
	// 1 true 0s
	// 2 false 40s
}
