// Package web serves Switchboard's HTTP API and, later, its chat UI. It
// imports the hub through the narrow interfaces below; cmd/switchboard wires
// it.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/switchboard-mcp/switchboard/internal/hub"
)

// Hub is what the API needs of the hub.
type Hub interface {
	Statuses() []hub.Status
	Conn(name string) (*hub.Conn, error)
}

// API serves /api/.
type API struct {
	hub Hub
}

// NewAPI returns the API handler.
func NewAPI(h Hub) *API { return &API{hub: h} }

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/servers", a.servers)
	mux.HandleFunc("GET /api/servers/{name}", a.server)
	mux.HandleFunc("POST /api/servers/{name}/reinitialize", a.reinitialize)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

func (a *API) servers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"servers": a.hub.Statuses()})
}

func (a *API) server(w http.ResponseWriter, r *http.Request) {
	c, err := a.hub.Conn(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	writeJSON(w, http.StatusOK, c.Status())
}

func (a *API) reinitialize(w http.ResponseWriter, r *http.Request) {
	c, err := a.hub.Conn(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := c.Reinitialize(ctx); err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, hub.ErrDisabled) {
			status = http.StatusConflict
		}
		writeJSON(w, status, map[string]any{"error": err.Error(), "server": c.Status()})
		return
	}
	writeJSON(w, http.StatusOK, c.Status())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
