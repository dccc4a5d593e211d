package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/stokehq/stoke/internal/cache"
)

// CachePurger is the response cache's part of the Backend.
type CachePurger interface {
	// PurgeCache removes what p selects from a function's cache (in a
	// cluster, every node's) and says how many entries went; ErrNotFound
	// or ErrNoCache (wrapped) when there is no such function or it has no
	// cache.
	PurgeCache(function string, p cache.Purge) (PurgeResult, error)
}

// Errors a CachePurger returns.
var (
	ErrNotFound = errors.New("not found")
	ErrNoCache  = errors.New("no cache")
)

// PurgeRequest is POST /v1/functions/{name}/cache/purge's body: exactly
// one of path (that path, any query unless it has one), prefix, or all.
type PurgeRequest struct {
	Path   string `json:"path,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	All    bool   `json:"all,omitempty"`
}

// PurgeResult says how many entries a purge removed.
type PurgeResult struct {
	Purged int `json:"purged"`
	// Missing are the cluster's live nodes that did not answer in time:
	// their caches may still hold what was purged elsewhere.
	Missing []string `json:"missing,omitempty"`
}

func routeCache(mux *http.ServeMux, b CachePurger) {
	mux.HandleFunc("POST /v1/functions/{name}/cache/purge", func(w http.ResponseWriter, r *http.Request) {
		var req PurgeRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "reading the purge request: "+err.Error())
			return
		}
		n := 0
		for _, set := range []bool{req.Path != "", req.Prefix != "", req.All} {
			if set {
				n++
			}
		}
		switch {
		case n != 1:
			writeErr(w, http.StatusBadRequest, "say what to purge: exactly one of path, prefix or all")
			return
		case req.Path != "" && !strings.HasPrefix(req.Path, "/"), req.Prefix != "" && !strings.HasPrefix(req.Prefix, "/"):
			writeErr(w, http.StatusBadRequest, "path and prefix start with /")
			return
		}
		res, err := b.PurgeCache(r.PathValue("name"), cache.Purge{Path: req.Path, Prefix: req.Prefix, All: req.All})
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoCache):
			writeErr(w, http.StatusNotFound, err.Error())
		case err != nil:
			writeErr(w, http.StatusInternalServerError, err.Error())
		default:
			writeJSON(w, http.StatusOK, res)
		}
	})
}
