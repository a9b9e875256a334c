// Package store persists Switchboard's state: users and their linked
// identities, OAuth clients, consents, authorization codes, refresh-token
// families, signing keys, identity-provider tokens, API keys, per-user
// credentials, distributed locks, short-lived single-use records, and the
// agent host's conversations, messages and API-defined agents.
//
// Two implementations pass one contract test suite: SQLite (the embedded
// default, a file in the data directory) and PostgreSQL (several replicas
// sharing one database). Every secret value (tokens, client secrets,
// private keys, credentials) and the user content of conversations and
// agents (titles, message texts, tool calls, references, agent definitions)
// is encrypted by the store with the secrets key ring before it is written,
// with associated data binding the ciphertext to its table, row and column;
// hashes (of codes, refresh tokens, API keys)
// are stored instead of the values where only comparison is needed.
//
// Conventions of every implementation: a zero expiry time means "never",
// and an expiry equal to now has passed; times come back in UTC with their
// nanoseconds; empty lists and byte slices come back nil; deleting what is
// not there is not an error, except for conversations and agents, whose
// callers answer 404; fields named CreatedAt (UpdatedAt for records
// without one) are set to the current time when zero.
//
// authserver, hub and agent import it; it imports secrets only.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors callers branch on.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value (username, email, provider subject) is taken.
	ErrConflict = errors.New("already exists")
	// ErrUsed: a single-use value (authorization code, refresh token) was
	// presented a second time. The record is returned along with it so that
	// the caller can revoke what the first use issued.
	ErrUsed = errors.New("already used")
	// ErrExpired: the record exists but its time is over.
	ErrExpired = errors.New("expired")
	// ErrKeyMismatch: opening a store with a secrets key ring that cannot
	// open what the database holds. The store refuses to start rather than
	// write data no one could read back.
	ErrKeyMismatch = errors.New("the secrets key does not match the data in the database")
)

// Role of a user.
type Role string

const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// User is a person who signs in.
type User struct {
	ID           string // opaque, assigned by CreateUser when empty
	Username     string // unique, case-insensitive; may be empty for IdP-only users
	Email        string // unique when non-empty, case-insensitive
	Name         string
	Role         Role
	PasswordHash string // argon2id/bcrypt encoded; empty when the user has no local password
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Identity links a user to an account at an identity provider.
type Identity struct {
	Provider  string // config name of the provider, e.g. "naver", "google", "github", "corp"
	Subject   string // the provider's stable user id
	UserID    string
	Email     string
	Name      string
	Profile   []byte // the provider's profile JSON as received (not secret)
	CreatedAt time.Time
}

// Client is an OAuth client registered with the authorization server (RFC
// 7591 DCR) or known by its Client ID Metadata Document URL.
type Client struct {
	ID                      string
	Name                    string
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	Scope                   string
	TokenEndpointAuthMethod string // "none", "client_secret_post", "client_secret_basic"
	ApplicationType         string // "web" or "native"
	Secret                  string // plaintext in memory, encrypted at rest; empty for public clients
	Metadata                []byte // the registration request or metadata document JSON
	CIMD                    bool   // ID is an https URL whose document describes the client
	CreatedAt               time.Time
	LastUsedAt              time.Time
	ExpiresAt               time.Time // zero: never; unused DCR registrations expire
}

// Consent is a user's remembered approval of a client at a redirect URI for
// one resource (RFC 8707): approving one server's endpoint says nothing
// about another's, or about the aggregate endpoint.
type Consent struct {
	UserID      string
	ClientID    string
	RedirectURI string
	Resource    string
	Scopes      []string
	CreatedAt   time.Time
}

// AuthCode is an issued authorization code, stored under the SHA-256 of the
// code.
type AuthCode struct {
	Hash          string
	ClientID      string
	UserID        string
	RedirectURI   string
	CodeChallenge string // S256 only
	Resource      string // RFC 8707
	Scopes        []string
	Nonce         string
	FamilyID      string // the refresh-token family the code's redemption issued, set by MarkCodeIssued
	ExpiresAt     time.Time
	UsedAt        time.Time
	CreatedAt     time.Time
}

// RefreshToken is one token of a rotation family, stored under the SHA-256
// of the token.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	ClientID  string
	UserID    string
	Resource  string
	Scopes    []string
	ExpiresAt time.Time
	UsedAt    time.Time // set when rotated
	CreatedAt time.Time
	// SuccessorHash is the hash of the token that replaced this one, set
	// when rotated. Successor is that token as the rotating caller sealed
	// it (opaque to the store), so that a retry of a rotation whose answer
	// was lost can be given the same token again; it is cleared once the
	// successor is rotated in turn.
	SuccessorHash string
	Successor     []byte
}

// SigningKey is a JWT signing key of the authorization server.
type SigningKey struct {
	ID         string // kid
	Algorithm  string // "ES256" or "EdDSA"
	PrivateKey []byte // PKCS#8 DER; encrypted at rest
	PublicJWK  []byte // JSON
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while it signs; retired keys still verify until their tokens expire
}

// ProviderToken is a user's token at an identity provider.
type ProviderToken struct {
	UserID       string
	Provider     string
	AccessToken  string // encrypted at rest
	RefreshToken string // encrypted at rest
	TokenType    string
	Scopes       []string
	Expiry       time.Time // zero: does not expire (GitHub OAuth apps)
	IDToken      string    // encrypted at rest
	UpdatedAt    time.Time
}

// APIKey is a personal token for scripts, stored under the SHA-256 of the key.
type APIKey struct {
	ID         string
	UserID     string
	Name       string
	Hash       string
	Prefix     string // first characters, shown to identify the key
	Scopes     []string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  time.Time
}

// Credential is one per-user secret value for a server (customUserVars,
// apiKey with source user, upstream OAuth tokens as JSON).
type Credential struct {
	UserID    string
	Server    string
	Name      string
	Value     string // encrypted at rest
	UpdatedAt time.Time
}

// Conversation is a chat of one user with the agent host. UserID is any
// user id (it need not be a User); every method that reads or changes a
// conversation names the user, and another user's conversation is
// ErrNotFound.
type Conversation struct {
	ID        string // assigned by CreateConversation when empty; unique per user
	UserID    string
	Title     string // encrypted at rest: it is made from the first message
	Agent     string
	Model     string
	CreatedAt time.Time
	UpdatedAt time.Time // set by AppendMessages
}

// Message is one message of a conversation.
type Message struct {
	ID             string // assigned by AppendMessages when empty; unique per conversation
	ConversationID string // set by AppendMessages
	Seq            int64  // set by AppendMessages: 1, 2, … in the order of appending
	Role           string
	Text           string // encrypted at rest
	RunID          string
	ToolCalls      []byte // JSON, with their arguments and summaries; encrypted at rest
	References     []byte // JSON; encrypted at rest
	InputTokens    int
	OutputTokens   int
	CreatedAt      time.Time
}

// Agent is an agent a user defined through the API.
type Agent struct {
	ID         string // assigned by PutAgent when empty; unique per user
	UserID     string // any user id, as for conversations
	Definition []byte // JSON; encrypted at rest (it holds the user's instructions)
	CreatedAt  time.Time
	UpdatedAt  time.Time // set by PutAgent
}

// Store is everything Switchboard persists.
type Store interface {
	// Users.
	CreateUser(ctx context.Context, u *User) error // sets ID, CreatedAt, UpdatedAt; ErrConflict
	UpdateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByUsername(ctx context.Context, username string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	CountUsers(ctx context.Context) (int, error)

	// Identities.
	LinkIdentity(ctx context.Context, id *Identity) error // ErrConflict if (provider, subject) is linked; ErrNotFound if the user is not
	IdentityBySubject(ctx context.Context, provider, subject string) (*Identity, error)
	IdentitiesOfUser(ctx context.Context, userID string) ([]*Identity, error)

	// OAuth clients.
	// CreateClient registers a client, assigning ID when empty;
	// ErrConflict if the id is taken. A CIMD client replaces an earlier
	// CIMD client of its id (keeping CreatedAt and LastUsedAt).
	CreateClient(ctx context.Context, c *Client) error
	ClientByID(ctx context.Context, id string) (*Client, error)
	TouchClient(ctx context.Context, id string, now time.Time) error
	// DeleteExpiredClients deletes clients whose ExpiresAt has passed and
	// that were never used (LastUsedAt zero), with their consents.
	DeleteExpiredClients(ctx context.Context, now time.Time) (int, error)

	// Consents.
	SaveConsent(ctx context.Context, c *Consent) error // upsert on (user, client, redirect URI, resource); ErrNotFound for an unknown user or client
	ConsentFor(ctx context.Context, userID, clientID, redirectURI, resource string) (*Consent, error)
	DeleteConsent(ctx context.Context, userID, clientID string) error

	// Authorization codes.
	SaveAuthCode(ctx context.Context, c *AuthCode) error
	// ConsumeAuthCode marks the code used and returns it. Exactly one of
	// concurrent callers succeeds; the others get the code and ErrUsed.
	// An expired code gives ErrExpired and no record; a used one gives
	// ErrUsed even after it expired (until Sweep removes it).
	ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*AuthCode, error)
	// MarkCodeIssued records the token family a redeemed code issued.
	MarkCodeIssued(ctx context.Context, hash, familyID string) error

	// Refresh tokens.
	SaveRefreshToken(ctx context.Context, t *RefreshToken) error
	// RotateRefreshToken marks old used and saves next in the same family,
	// atomically. Presenting a used token returns it with ErrUsed (the
	// caller then revokes the family); a revoked family gives ErrNotFound;
	// an expired token ErrExpired. On success it returns the old token.
	// next's FamilyID, ClientID and UserID default to the old token's.
	// The old token records next's hash and sealedNext (its
	// SuccessorHash and Successor); the old token's own predecessor
	// forgets its Successor.
	RotateRefreshToken(ctx context.Context, oldHash string, next *RefreshToken, sealedNext []byte, now time.Time) (*RefreshToken, error)
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error) // as stored: used or not, revoked family or not
	RevokeFamily(ctx context.Context, familyID string, now time.Time) error
	FamilyRevoked(ctx context.Context, familyID string) (bool, error)
	RevokeUserClientFamilies(ctx context.Context, userID, clientID string, now time.Time) error

	// Access-token revocation (RFC 7009) by JWT id, kept until the token expires.
	RevokeAccessToken(ctx context.Context, jti string, expires time.Time) error
	AccessTokenRevoked(ctx context.Context, jti string) (bool, error)

	// Signing keys.
	SaveSigningKey(ctx context.Context, k *SigningKey) error
	SigningKeys(ctx context.Context) ([]*SigningKey, error) // newest first
	RetireSigningKey(ctx context.Context, id string, now time.Time) error

	// Identity-provider tokens.
	SaveProviderToken(ctx context.Context, t *ProviderToken) error // upsert on (user, provider); ErrNotFound for an unknown user
	ProviderToken(ctx context.Context, userID, provider string) (*ProviderToken, error)
	DeleteProviderToken(ctx context.Context, userID, provider string) error

	// API keys.
	CreateAPIKey(ctx context.Context, k *APIKey) error              // assigns ID when empty; ErrNotFound for an unknown user
	APIKeyByHash(ctx context.Context, hash string) (*APIKey, error) // revoked and expired keys too: the caller checks
	ListAPIKeys(ctx context.Context, userID string) ([]*APIKey, error)
	RevokeAPIKey(ctx context.Context, id string, now time.Time) error
	TouchAPIKey(ctx context.Context, id string, now time.Time) error

	// Per-user credentials, keyed by any user id (it need not be a User).
	SetCredential(ctx context.Context, c *Credential) error // upsert on (user, server, name)
	Credentials(ctx context.Context, userID, server string) ([]*Credential, error)
	DeleteCredentials(ctx context.Context, userID, server string) error

	// Conversations of the agent host, per user: a conversation or agent
	// of another user is ErrNotFound, whatever the method.
	// CreateConversation assigns ID when empty; ErrConflict if the user
	// has a conversation with its id.
	CreateConversation(ctx context.Context, c *Conversation) error
	ListConversations(ctx context.Context, userID string) ([]*Conversation, error) // oldest first
	ConversationByID(ctx context.Context, userID, id string) (*Conversation, error)
	RenameConversation(ctx context.Context, userID, id, title string) error // keeps UpdatedAt; ErrNotFound
	DeleteConversation(ctx context.Context, userID, id string) error        // with its messages; ErrNotFound
	// AppendMessages adds msgs to the conversation in order, numbering
	// them after its last message, and sets its UpdatedAt. Concurrent
	// appends are serialized: each one's messages get consecutive numbers.
	// ErrNotFound if the conversation does not exist; ErrConflict if a
	// message id is taken in it (then nothing is added).
	AppendMessages(ctx context.Context, userID, conversationID string, msgs ...*Message) error
	Messages(ctx context.Context, userID, conversationID string) ([]*Message, error) // in order; ErrNotFound
	// RecentMessages returns the last limit messages (none if limit ≤ 0),
	// oldest first; ErrNotFound if the conversation does not exist.
	RecentMessages(ctx context.Context, userID, conversationID string, limit int) ([]*Message, error)

	// Agents defined through the API, per user.
	PutAgent(ctx context.Context, a *Agent) error // creates or replaces, keeping CreatedAt of the agent it replaces
	AgentByID(ctx context.Context, userID, id string) (*Agent, error)
	ListAgents(ctx context.Context, userID string) ([]*Agent, error) // oldest first
	DeleteAgent(ctx context.Context, userID, id string) error        // ErrNotFound

	// Short-lived single-use records (pending authorization requests, login
	// state, CSRF tokens), shared by replicas. Value is encrypted at rest.
	PutEphemeral(ctx context.Context, kind, key string, value []byte, expires time.Time) error
	// TakeEphemeral returns and deletes the record; ErrNotFound when absent
	// or expired. Exactly one of concurrent callers gets it.
	TakeEphemeral(ctx context.Context, kind, key string, now time.Time) ([]byte, error)
	GetEphemeral(ctx context.Context, kind, key string, now time.Time) ([]byte, error)

	// Locks that hold across replicas, for single-flight token refresh.
	// TryLock takes name for owner until expires, or reports false if
	// someone else holds it unexpired; the owner may take it again to
	// extend it. Expiry is judged by the store's wall clock (the interface
	// passes no now). Unlock releases it if owner holds it.
	TryLock(ctx context.Context, name, owner string, expires time.Time) (bool, error)
	Unlock(ctx context.Context, name, owner string) error

	// Sweep deletes expired codes, tokens, ephemeral records and locks.
	Sweep(ctx context.Context, now time.Time) error

	Close() error
}
