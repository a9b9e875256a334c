package authserver

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/ratelimit"
)

// signInFrom posts a sign-in through a proxy at 127.0.0.1 (the test
// server's peer) that names the client xff in X-Forwarded-For, and returns
// the status and Retry-After.
func signInFrom(t *testing.T, e *testEnv, c client, xff, username, password string) (int, string) {
	t.Helper()
	b := newBrowser()
	_, page := b.get(t, e.authorizeURL(c, newPKCE(), nil))
	rid, csrf := formFields(t, page)
	form := url.Values{"rid": {rid}, "csrf": {csrf}, "username": {username}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, e.iss+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// Issue 10, finding 7 (lockout): failed sign-ins are counted per account,
// with an exponential delay, and per client address across accounts; the
// client address comes from X-Forwarded-For only through trusted proxies.
// Run on the in-memory limiter and on Redis, which replicas share.
func TestLoginLockout(t *testing.T) {
	const good, bad = "correct horse battery", "wrong password"
	type attempt struct {
		advance        time.Duration
		from, user, pw string
		want           int
		wantRetryAfter string // "" for any
	}
	fails := func(n int, from, user string) []attempt {
		var out []attempt
		for range n {
			out = append(out, attempt{0, from, user, bad, http.StatusUnauthorized, ""})
		}
		return out
	}
	free := loginBackoff.Free
	cases := []struct {
		name    string
		trusted bool // 127.0.0.0/8 is a trusted proxy
		users   []string
		steps   []attempt
	}{
		{"one account guessed from many addresses is delayed", true, []string{"alice"}, func() []attempt {
			var out []attempt
			for i := range free + 1 {
				out = append(out, attempt{0, "198.51.100." + strconv.Itoa(i+1), "alice", bad, http.StatusUnauthorized, ""})
			}
			return append(out,
				attempt{0, "198.51.100.200", "alice", good, http.StatusTooManyRequests, "1"},
				attempt{time.Second, "198.51.100.201", "alice", good, http.StatusFound, ""})
		}()},
		{"the delay doubles and a success resets it", true, []string{"alice"}, append(fails(free+1, "203.0.113.7", "alice"),
			attempt{0, "203.0.113.7", "alice", good, http.StatusTooManyRequests, "1"},
			attempt{time.Second, "203.0.113.7", "alice", bad, http.StatusUnauthorized, ""},
			attempt{0, "203.0.113.7", "alice", good, http.StatusTooManyRequests, "2"},
			attempt{time.Second, "203.0.113.7", "alice", good, http.StatusTooManyRequests, "1"},
			attempt{time.Second, "203.0.113.7", "alice", good, http.StatusFound, ""},
			attempt{0, "203.0.113.7", "alice", bad, http.StatusUnauthorized, ""}, // free again
			attempt{0, "203.0.113.7", "alice", good, http.StatusFound, ""},
		)},
		{"one person's typos lock out no one else behind the same proxy", true, []string{"alice", "bob"}, append(fails(free+1, "203.0.113.7", "alice"),
			attempt{0, "203.0.113.7", "alice", good, http.StatusTooManyRequests, "1"},
			attempt{0, "203.0.113.8", "bob", good, http.StatusFound, ""},
			attempt{0, "203.0.113.7", "bob", good, http.StatusFound, ""},
		)},
		{"one address trying many accounts is limited", true, []string{"alice"}, func() []attempt {
			var out []attempt
			for i := range loginAddrLimit {
				out = append(out, attempt{0, "2001:db8:1:2::" + strconv.Itoa(i+1), "user" + strconv.Itoa(i), bad, http.StatusUnauthorized, ""})
			}
			return append(out,
				// The same /64 is the same client.
				attempt{0, "2001:db8:1:2::ffff", "alice", good, http.StatusTooManyRequests, ""},
				attempt{0, "2001:db8:1:3::1", "alice", good, http.StatusFound, ""})
		}()},
		{"X-Forwarded-For of an untrusted peer is ignored", false, []string{"alice"}, func() []attempt {
			var out []attempt
			for i := range loginAddrLimit {
				out = append(out, attempt{0, "198.51.100." + strconv.Itoa(i+1), "user" + strconv.Itoa(i), bad, http.StatusUnauthorized, ""})
			}
			return append(out, attempt{0, "192.0.2.99", "alice", good, http.StatusTooManyRequests, ""})
		}()},
	}
	limiters := []struct {
		name string
		make func(t *testing.T, now func() time.Time) ratelimit.Limiter
	}{
		{"memory", func(t *testing.T, now func() time.Time) ratelimit.Limiter {
			return ratelimit.NewMemory(&ratelimit.MemoryOptions{Now: now})
		}},
		{"redis", func(t *testing.T, now func() time.Time) ratelimit.Limiter { return redisLimiters(t, 1, now)[0] }},
	}
	for _, lim := range limiters {
		for _, tt := range cases {
			t.Run(lim.name+"/"+tt.name, func(t *testing.T) {
				clk := &clock{t: time.Now()}
				l := lim.make(t, clk.Now)
				e := newEnv(t, func(o *Options) {
					o.Now = clk.Now
					o.Limiter = l
					if tt.trusted {
						o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
					}
				})
				c := e.publicClient()
				for _, u := range tt.users {
					e.user(u)
				}
				for i, a := range tt.steps {
					clk.Advance(a.advance)
					status, retry := signInFrom(t, e, c, a.from, a.user, a.pw)
					if status != a.want || (a.wantRetryAfter != "" && retry != a.wantRetryAfter) {
						t.Fatalf("step %d (%s from %s): %d Retry-After %q, want %d %q", i, a.user, a.from, status, retry, a.want, a.wantRetryAfter)
					}
				}
			})
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, tt := range []struct {
		name  string
		peer  string
		xff   []string
		trust []netip.Prefix
		want  string
	}{
		{"no proxies configured: the peer", "192.0.2.1:5000", []string{"198.51.100.1"}, nil, "192.0.2.1"},
		{"untrusted peer: its header is ignored", "192.0.2.1:5000", []string{"198.51.100.1"}, trusted, "192.0.2.1"},
		{"trusted peer without a header", "10.0.0.5:5000", nil, trusted, "10.0.0.5"},
		{"one trusted hop", "10.0.0.5:5000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"a forged entry left of the client is skipped", "10.0.0.5:5000", []string{"6.6.6.6, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"two trusted hops", "10.0.0.5:5000", []string{"198.51.100.1, 10.1.2.3"}, trusted, "198.51.100.1"},
		{"several header lines in order", "10.0.0.5:5000", []string{"6.6.6.6", "198.51.100.1, 10.1.2.3"}, trusted, "198.51.100.1"},
		{"every hop trusted: the leftmost", "10.0.0.5:5000", []string{"10.9.9.9, 10.1.2.3"}, trusted, "10.9.9.9"},
		{"garbage ends the walk at the hop that passed it", "10.0.0.5:5000", []string{"198.51.100.1, not-an-ip, 10.1.2.3"}, trusted, "10.1.2.3"},
		{"IPv6 with brackets and port", "[2001:db8:ffff::1]:443", []string{"[2001:db8:1::7]:5555"}, trusted, "2001:db8:1::7"},
		{"IPv4-mapped IPv6 peer", "[::ffff:10.0.0.5]:5000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"unparsable peer", "@", []string{"198.51.100.1"}, trusted, "invalid IP"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{trustedProxies: tt.trust}
			r, _ := http.NewRequest(http.MethodGet, "http://sb/", nil)
			r.RemoteAddr = tt.peer
			for _, h := range tt.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			if got := s.clientIP(r).String(); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}
