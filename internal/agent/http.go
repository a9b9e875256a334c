package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-mcp/switchboard/internal/llm"
)

// HandlerOptions configure the HTTP API. The zero value is valid.
type HandlerOptions struct {
	// User returns the signed-in user of a request; ok false answers 401.
	// Nil: every request is the single local user "local".
	User func(r *http.Request) (userID string, ok bool)
}

const maxBodyBytes = 1 << 20

// Handler returns the agent API, to be mounted at /api/:
//
//	POST   /api/chat                      start a run, stream its events (SSE);
//	                                      with Last-Event-ID "<run>:<seq>" resume that run instead
//	GET    /api/chat/{run}/events         resume a run's events (Last-Event-ID or ?after=N)
//	POST   /api/chat/{run}/cancel         cancel a run
//	GET    /api/agents                    agents of the config and of the user
//	POST   /api/agents                    create an agent
//	GET    /api/agents/{id}
//	PATCH  /api/agents/{id}               change fields of an API-defined agent
//	DELETE /api/agents/{id}
//	GET    /api/conversations             the user's conversations
//	GET    /api/conversations/{id}        one conversation with its messages
//	PATCH  /api/conversations/{id}        {"title": "…"}
//	DELETE /api/conversations/{id}
func (h *Host) Handler(opts *HandlerOptions) http.Handler {
	a := &api{h: h}
	if opts != nil {
		a.user = opts.User
	}
	if a.user == nil {
		a.user = func(*http.Request) (string, bool) { return "local", true }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", a.auth(a.chat))
	mux.HandleFunc("GET /api/chat/{run}/events", a.auth(a.events))
	mux.HandleFunc("POST /api/chat/{run}/cancel", a.auth(a.cancel))
	mux.HandleFunc("GET /api/agents", a.auth(a.listAgents))
	mux.HandleFunc("POST /api/agents", a.auth(a.createAgent))
	mux.HandleFunc("GET /api/agents/{id}", a.auth(a.getAgent))
	mux.HandleFunc("PATCH /api/agents/{id}", a.auth(a.patchAgent))
	mux.HandleFunc("DELETE /api/agents/{id}", a.auth(a.deleteAgent))
	mux.HandleFunc("GET /api/conversations", a.auth(a.listConversations))
	mux.HandleFunc("GET /api/conversations/{id}", a.auth(a.getConversation))
	mux.HandleFunc("PATCH /api/conversations/{id}", a.auth(a.renameConversation))
	mux.HandleFunc("DELETE /api/conversations/{id}", a.auth(a.deleteConversation))
	return mux
}

type api struct {
	h    *Host
	user func(*http.Request) (string, bool)
}

type userHandler func(w http.ResponseWriter, r *http.Request, user string)

func (a *api) auth(next userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, ok := a.user(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "sign-in required")
			return
		}
		next(w, r, user)
	}
}

func (a *api) chat(w http.ResponseWriter, r *http.Request, user string) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		runID, seq, err := parseEventID(id)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		a.follow(w, r, user, runID, seq)
		return
	}
	var req ChatRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	run, err := a.h.Start(r.Context(), user, req)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.stream(w, r, run, 0)
}

func (a *api) events(w http.ResponseWriter, r *http.Request, user string) {
	seq := 0
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		runID, n, err := parseEventID(id)
		if err != nil || runID != r.PathValue("run") {
			writeError(w, http.StatusBadRequest, "Last-Event-ID does not belong to this run")
			return
		}
		seq = n
	} else if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "after: want a sequence number")
			return
		}
		seq = n
	}
	a.follow(w, r, user, r.PathValue("run"), seq)
}

func (a *api) follow(w http.ResponseWriter, r *http.Request, user, runID string, seq int) {
	run, err := a.h.Run(user, runID)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.stream(w, r, run, seq)
}

// stream writes run's events after seq as Server-Sent Events whose id is
// "<run>:<seq>", so that a reconnecting EventSource resumes where it
// stopped.
func (a *api) stream(w http.ResponseWriter, r *http.Request, run *Run, seq int) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	run.Follow(r.Context(), seq, func(e Event) error {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "id: %s:%d\nevent: %s\ndata: %s\n\n", e.RunID, e.Seq, e.Type, data); err != nil {
			return err
		}
		return rc.Flush()
	})
}

func parseEventID(s string) (string, int, error) {
	run, n, ok := strings.Cut(s, ":")
	seq, err := strconv.Atoi(n)
	if !ok || run == "" || err != nil || seq < 0 {
		return "", 0, fmt.Errorf("Last-Event-ID %q: want <run>:<seq>", s)
	}
	return run, seq, nil
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request, user string) {
	run, err := a.h.Run(user, r.PathValue("run"))
	if err != nil {
		a.fail(w, err)
		return
	}
	run.Cancel()
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) listAgents(w http.ResponseWriter, r *http.Request, user string) {
	out := append([]Agent{}, a.h.opts.Agents...)
	if s := a.h.opts.AgentStore; s != nil {
		mine, err := s.List(r.Context(), user)
		if err != nil {
			a.fail(w, err)
			return
		}
		for _, ag := range mine {
			ag.Source = "api"
			out = append(out, ag)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (a *api) getAgent(w http.ResponseWriter, r *http.Request, user string) {
	ag, err := a.h.agent(r.Context(), user, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ag)
}

func (a *api) createAgent(w http.ResponseWriter, r *http.Request, user string) {
	s := a.h.opts.AgentStore
	if s == nil {
		writeError(w, http.StatusNotImplemented, "agents can only be defined in the config file")
		return
	}
	var ag Agent
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&ag); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	ag.ID = newID("agent_")
	ag.Source = "api"
	if err := a.validate(&ag); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.Put(r.Context(), user, &ag); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ag)
}

func (a *api) patchAgent(w http.ResponseWriter, r *http.Request, user string) {
	ag, err := a.h.agent(r.Context(), user, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if ag.Source != "api" {
		writeError(w, http.StatusForbidden, "agent is defined in the config file")
		return
	}
	id := ag.ID
	// Fields present in the body replace the agent's; others stay.
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(ag); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	ag.ID, ag.Source = id, "api"
	if err := a.validate(ag); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.h.opts.AgentStore.Put(r.Context(), user, ag); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ag)
}

func (a *api) deleteAgent(w http.ResponseWriter, r *http.Request, user string) {
	ag, err := a.h.agent(r.Context(), user, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if ag.Source != "api" {
		writeError(w, http.StatusForbidden, "agent is defined in the config file")
		return
	}
	if err := a.h.opts.AgentStore.Delete(r.Context(), user, ag.ID); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) validate(ag *Agent) error {
	if strings.TrimSpace(ag.Name) == "" {
		return errors.New("name is required")
	}
	if ag.Language != "" && ag.Language != Korean && ag.Language != English {
		return fmt.Errorf("language %q: want ko or en", ag.Language)
	}
	if ag.Model != "" {
		if _, _, err := a.h.opts.Models.Resolve(ag.Model); err != nil {
			return err
		}
	}
	return nil
}

func (a *api) conversations(w http.ResponseWriter) Conversations {
	cs := a.h.opts.Conversations
	if cs == nil {
		writeError(w, http.StatusNotImplemented, "conversations are not stored")
	}
	return cs
}

func (a *api) listConversations(w http.ResponseWriter, r *http.Request, user string) {
	cs := a.conversations(w)
	if cs == nil {
		return
	}
	list, err := cs.List(r.Context(), user)
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []Conversation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": list})
}

func (a *api) getConversation(w http.ResponseWriter, r *http.Request, user string) {
	cs := a.conversations(w)
	if cs == nil {
		return
	}
	c, err := cs.Get(r.Context(), user, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *api) renameConversation(w http.ResponseWriter, r *http.Request, user string) {
	cs := a.conversations(w)
	if cs == nil {
		return
	}
	var body struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&body); err != nil || strings.TrimSpace(body.Title) == "" {
		writeError(w, http.StatusBadRequest, "body: want {\"title\": \"…\"}")
		return
	}
	if err := cs.Rename(r.Context(), user, r.PathValue("id"), strings.TrimSpace(body.Title)); err != nil {
		a.fail(w, err)
		return
	}
	c, err := cs.Get(r.Context(), user, r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	c.Messages = nil
	writeJSON(w, http.StatusOK, c)
}

func (a *api) deleteConversation(w http.ResponseWriter, r *http.Request, user string) {
	cs := a.conversations(w)
	if cs == nil {
		return
	}
	if err := cs.Delete(r.Context(), user, r.PathValue("id")); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers an error: what the client sent wrong is shown; anything
// else is logged and answered generically.
func (a *api) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrEmptyMessage), errors.Is(err, ErrServerRefused), errors.Is(err, llm.ErrBadModelRef):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		a.h.log.Error("agent api", "error", err.Error())
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
