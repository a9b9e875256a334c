package authserver

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-mcp/switchboard/internal/authserver/idp"
	"github.com/switchboard-mcp/switchboard/internal/store"
)

// Users created from identities get a username from the profile, made
// unique, and the e-mail the provider vouches for unless another user has
// it; a user who signs in again keeps theirs; one created before usernames
// were given gets one at the next sign-in.
func TestLinkUserNames(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if _, err := e.srv.CreateUser(ctx, "kim", "correct horse battery", store.RoleUser); err != nil {
		t.Fatal(err)
	}
	// An identity user from before usernames: no username.
	old := &store.User{Name: "Old", Role: store.RoleUser}
	if err := e.st.CreateUser(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.st.LinkIdentity(ctx, &store.Identity{Provider: "google", Subject: "g-old", UserID: old.ID}); err != nil {
		t.Fatal(err)
	}
	type who struct{ Username, Email string }
	tests := []struct {
		name     string
		provider string
		id       idp.Identity
		want     who
	}{
		{"nickname taken by a local user", "naver", idp.Identity{Subject: "n1", Username: "kim", Email: "kim@naver.com", EmailVerified: true}, who{"kim-2", "kim@naver.com"}},
		{"same nickname, address taken", "naver", idp.Identity{Subject: "n2", Username: "kim", Email: "kim@naver.com", EmailVerified: true}, who{"kim-3", ""}},
		{"same identity again", "naver", idp.Identity{Subject: "n1", Username: "kim", Email: "kim@naver.com", EmailVerified: true}, who{"kim-2", "kim@naver.com"}},
		{"no username: the address's local part; unverified address left out", "github", idp.Identity{Subject: "7", Email: "lee@example.com"}, who{"lee", ""}},
		{"spaces become dashes", "oidc", idp.Identity{Subject: "o1", Username: "Park Ji Sung", Email: "park@corp.example", EmailVerified: true}, who{"Park-Ji-Sung", "park@corp.example"}},
		{"nothing to go by", "oidc", idp.Identity{Subject: "o2"}, who{"user", ""}},
		{"old user named at sign-in", "google", idp.Identity{Subject: "g-old", Username: "old", Email: "old@gmail.com", EmailVerified: true}, who{"old", "old@gmail.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := e.srv.linkUser(ctx, tt.provider, &tt.id)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := e.st.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, who{stored.Username, stored.Email}); diff != "" {
				t.Errorf("stored user (-want +got):\n%s", diff)
			}
			if byName, err := e.st.UserByUsername(ctx, tt.want.Username); err != nil || byName.ID != u.ID {
				t.Errorf("UserByUsername(%q) = %v, %v; want the user", tt.want.Username, byName, err)
			}
		})
	}
}
