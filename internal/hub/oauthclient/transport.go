package oauthclient

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// Transport returns an http.RoundTripper for the MCP connection to the
// server: it adds the Authorization header (Bearer or DPoP with a fresh
// proof), and on a 401 or an insufficient_scope 403 it (re)authorizes and
// repeats the request. A nil base means http.DefaultTransport.
func (c *Client) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, base: base}
}

type transport struct {
	c    *Client
	base http.RoundTripper
}

// maxReplayBody bounds a request body buffered for a retry.
const maxReplayBody = 8 << 20

// maxAuthorizations bounds (re)authorizations for one request, so that a
// server that keeps refusing cannot loop the client.
const maxAuthorizations = 2

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	c := t.c
	getBody := req.GetBody
	if req.Body != nil && req.Body != http.NoBody && getBody == nil {
		data, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > maxReplayBody {
			return nil, fmt.Errorf("request body over %d bytes", maxReplayBody)
		}
		getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	tok, err := c.validToken(ctx)
	if err != nil {
		return nil, err
	}
	if tok == nil && c.opts.Proactive {
		if _, err := c.handleChallenge(ctx, http.StatusUnauthorized, nil, nil); err != nil {
			return nil, err
		}
		if tok, err = c.Token(ctx); err != nil {
			return nil, err
		}
	}
	authorizations, nonceRetried := 0, false
	for first := true; ; first = false {
		r := req.Clone(ctx)
		if getBody != nil && (!first || req.GetBody == nil) {
			if r.Body, err = getBody(); err != nil {
				return nil, err
			}
		}
		if tok != nil {
			if err := c.authorize(r, tok); err != nil {
				return nil, err
			}
		}
		resp, err := t.base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if tok != nil && tok.TokenType == "DPoP" {
			if n := resp.Header.Get("DPoP-Nonce"); n != "" {
				c.mu.Lock()
				c.rsNonces[originOf(req.URL.String())] = n
				c.mu.Unlock()
			}
		}
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			return resp, nil
		}
		chs := parseChallenges(resp.Header)
		if resp.StatusCode == http.StatusForbidden && challengeError(chs) != "insufficient_scope" {
			return resp, nil
		}
		// RFC 9449 §9: a resource server nonce challenge is answered by
		// repeating the request with the nonce, not by a new token.
		if resp.StatusCode == http.StatusUnauthorized && tok != nil && tok.TokenType == "DPoP" &&
			challengeError(chs) == "use_dpop_nonce" && resp.Header.Get("DPoP-Nonce") != "" && !nonceRetried {
			nonceRetried = true
			drain(resp)
			continue
		}
		if authorizations == maxAuthorizations {
			return resp, nil
		}
		authorizations++
		res, err := c.handleChallenge(ctx, resp.StatusCode, chs, tok)
		if err != nil {
			drain(resp)
			return nil, fmt.Errorf("authorize %s: %w", c.server.Host, err)
		}
		if res == giveUp {
			return resp, nil
		}
		drain(resp)
		if tok, err = c.Token(ctx); err != nil {
			return nil, err
		}
		nonceRetried = false
	}
}

// authorize sets the credentials of tok on r.
func (c *Client) authorize(r *http.Request, tok *Token) error {
	if tok.TokenType != "DPoP" {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return nil
	}
	c.mu.Lock()
	nonce := c.rsNonces[originOf(r.URL.String())]
	c.mu.Unlock()
	p, err := c.dpop.proof(r.Method, r.URL.String(), nonce, tok.AccessToken, c.now())
	if err != nil {
		return err
	}
	// RFC 9449 §7.1: the DPoP scheme, with the proof in the DPoP header.
	r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	r.Header.Set("DPoP", p)
	return nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
