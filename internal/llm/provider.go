package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ProviderConfig is one entry of the llm.providers config section.
type ProviderConfig struct {
	// Type is "openai" (any OpenAI-compatible chat completions API) or
	// "anthropic".
	Type string
	// BaseURL of the API. Empty: the vendor's public API. For CLOVA Studio:
	// https://clovastudio.stream.ntruss.com/v1/openai/; for Ollama:
	// http://127.0.0.1:11434/v1.
	BaseURL string
	// APIKey is sent as a bearer token (openai) or x-api-key (anthropic).
	// Empty: none is sent (fine for a local Ollama).
	APIKey string
	// Models lists the models offered to users. Empty: any model name is
	// accepted and passed through.
	Models []string
	// Headers are added to every request.
	Headers map[string]string
	// MaxRetries bounds the retries of a rate-limited or overloaded request
	// before any token was streamed. 0: 3; negative: no retries.
	MaxRetries int
	// RetryDelay is the first backoff delay, doubled on every retry and
	// replaced by the API's Retry-After when that is longer (capped at
	// 30s). 0: 500ms.
	RetryDelay time.Duration
}

// Types of provider.
const (
	TypeOpenAI    = "openai"
	TypeAnthropic = "anthropic"
)

// New returns the provider described by cfg. name is the provider's name in
// the config (the "clova" of "clova/HCX-005"), used in errors. hc nil:
// http.DefaultClient.
func New(name string, cfg ProviderConfig, hc *http.Client) (Provider, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	r := retry{max: cfg.MaxRetries, delay: cfg.RetryDelay}
	if r.max == 0 {
		r.max = 3
	}
	if r.delay == 0 {
		r.delay = 500 * time.Millisecond
	}
	switch strings.ToLower(cfg.Type) {
	case TypeOpenAI, "":
		return newOpenAI(name, cfg, hc, r), nil
	case TypeAnthropic:
		return newAnthropic(name, cfg, hc, r), nil
	}
	return nil, fmt.Errorf("llm provider %q: unknown type %q (want %q or %q)", name, cfg.Type, TypeOpenAI, TypeAnthropic)
}

// Registry resolves "provider/model" references.
type Registry struct {
	providers map[string]Provider
	models    map[string][]string
	def       string
}

// NewRegistry builds the providers of cfgs. def is the default model
// reference ("clova/HCX-005"); empty: none.
func NewRegistry(cfgs map[string]ProviderConfig, def string, hc *http.Client) (*Registry, error) {
	r := &Registry{providers: make(map[string]Provider), models: make(map[string][]string), def: def}
	for name, cfg := range cfgs {
		p, err := New(name, cfg, hc)
		if err != nil {
			return nil, err
		}
		r.providers[name] = p
		r.models[name] = cfg.Models
	}
	if def != "" {
		if _, _, err := r.Resolve(def); err != nil {
			return nil, fmt.Errorf("llm default: %w", err)
		}
	}
	return r, nil
}

// Add registers a provider under name; models as in ProviderConfig.Models.
func (r *Registry) Add(name string, p Provider, models []string) {
	r.providers[name] = p
	r.models[name] = models
}

// Default returns the default model reference.
func (r *Registry) Default() string { return r.def }

// ErrBadModelRef is returned for a model reference that names no configured
// provider or model.
var ErrBadModelRef = errors.New("bad model reference")

// Resolve splits ref ("provider/model"; empty: the default) and returns the
// provider and the model name to send. The model part may itself contain
// slashes ("local/qwen/qwen3").
func (r *Registry) Resolve(ref string) (Provider, string, error) {
	if ref == "" {
		ref = r.def
	}
	prov, model, ok := strings.Cut(ref, "/")
	if !ok || prov == "" || model == "" {
		return nil, "", fmt.Errorf("%w %q: want provider/model", ErrBadModelRef, ref)
	}
	p, ok := r.providers[prov]
	if !ok {
		return nil, "", fmt.Errorf("%w %q: no provider %q", ErrBadModelRef, ref, prov)
	}
	if ms := r.models[prov]; len(ms) > 0 && !contains(ms, model) {
		return nil, "", fmt.Errorf("%w %q: provider %q offers %s", ErrBadModelRef, ref, prov, strings.Join(ms, ", "))
	}
	return p, model, nil
}

// Models lists the configured model references, provider by provider.
func (r *Registry) Models() []string {
	var out []string
	for name, ms := range r.models {
		for _, m := range ms {
			out = append(out, name+"/"+m)
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// retry is the backoff policy for requests refused before any token was
// streamed. Retrying then is safe: the model has produced nothing the user
// saw, and no tool has run.
type retry struct {
	max   int
	delay time.Duration
}

const maxRetryDelay = 30 * time.Second

// open calls start until it succeeds, fails with an error that is not
// worth retrying, or the retries are used up.
func (r retry) open(ctx context.Context, start func(ctx context.Context) (Stream, error)) (Stream, error) {
	delay := r.delay
	for attempt := 0; ; attempt++ {
		s, err := start(ctx)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ae *APIError
		if !errors.As(err, &ae) || !(ae.Kind == ErrRateLimited || ae.Status == 502 || ae.Status == 503 || ae.Status == 529) || attempt >= r.max {
			return nil, err
		}
		wait := max(delay, ae.retryAfter)
		wait = min(wait, maxRetryDelay)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay *= 2
	}
}

func parseRetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// queue is the part of a Stream shared by the providers: a provider turns
// each wire event into zero or more Events with step, and queue serves
// them one at a time.
type queue struct {
	pending []Event
	cur     Event
	err     error
	done    bool
	step    func() ([]Event, bool, error) // events, more, error
	close   func() error
	closed  bool
}

func (q *queue) Next() bool {
	for len(q.pending) == 0 {
		if q.done || q.err != nil {
			return false
		}
		evs, more, err := q.step()
		q.pending = append(q.pending, evs...)
		if err != nil {
			q.err = err
		}
		if !more {
			q.done = true
		}
	}
	q.cur, q.pending = q.pending[0], q.pending[1:]
	return true
}

func (q *queue) Event() Event { return q.cur }
func (q *queue) Err() error   { return q.err }

func (q *queue) Close() error {
	if q.closed {
		return nil
	}
	q.closed = true
	return q.close()
}

// prime reads ahead until the first event so that errors the API sends
// before answering surface from Provider.Stream, where they can be retried.
func (q *queue) prime() error {
	for len(q.pending) == 0 && !q.done && q.err == nil {
		evs, more, err := q.step()
		q.pending = append(q.pending, evs...)
		q.err = err
		q.done = !more
	}
	if len(q.pending) == 0 && q.err != nil {
		err := q.err
		q.Close()
		return err
	}
	return nil
}
