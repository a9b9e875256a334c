package web

import (
	"github.com/microcosm-cc/bluemonday"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// serverView is a server as the API shows it to a user: the hub's status
// and, for a server with per-user variables, each variable described.
type serverView struct {
	hub.Status
	// CustomUserVars describe the variables a user fills in, sorted by
	// name: whether the caller has set each, never the value.
	CustomUserVars []variable `json:"customUserVars,omitempty"`
}

// variable is one of a server's customUserVars (or the user's own API key,
// for apiKey.source: user).
type variable struct {
	Name  string `json:"name"`
	Title string `json:"title,omitempty"`
	// Description is the config's description, HTML as LibreChat renders
	// it, sanitized (links, emphasis, lists; no scripts, styles or event
	// attributes), so that a page may insert it as HTML.
	Description string `json:"description,omitempty"`
	Sensitive   bool   `json:"sensitive"`
	Set         bool   `json:"set"`
}

// descriptionPolicy is the HTML a variable's description may keep:
// bluemonday's policy for user-generated content, links opening in a new
// tab without access to this page.
var descriptionPolicy = func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AddTargetBlankToFullyQualifiedLinks(true)
	p.RequireNoReferrerOnLinks(true)
	return p
}()

// apiKeyTitle is the title of the user's own API key (apiKey.source:
// user), which has no customUserVars entry.
const apiKeyTitle = "API key"

// view adds the variables of st's server, as its user has them, to st.
func (a *API) view(st hub.Status) serverView {
	v := serverView{Status: st}
	c, err := a.hub.Conn(st.Name)
	if err != nil {
		return v
	}
	cfg := c.Config()
	for _, name := range hub.Variables(cfg) {
		vr := variable{Name: name, Title: apiKeyTitle, Sensitive: true, Set: st.Variables[name]}
		if uv, ok := cfg.CustomUserVars[name]; ok {
			vr.Title, vr.Description, vr.Sensitive = uv.Title, descriptionPolicy.Sanitize(uv.Description), uv.Sensitive
		}
		v.CustomUserVars = append(v.CustomUserVars, vr)
	}
	return v
}
