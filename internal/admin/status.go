package admin

import (
	"net/http"

	"github.com/stokehq/stoke/internal/store"
)

// Status is GET /v1/status: what is wrong with Stoke itself, for the
// dashboard's banner (functions' own health is in /v1/functions).
type Status struct {
	// Store says whether records and logs can be written to data_dir,
	// and how many were lost when not.
	Store store.Health `json:"store"`
}

// Statuser is the Backend's part that reports Status.
type Statuser interface {
	Status() Status
}

func routeStatus(mux *http.ServeMux, b Statuser) {
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
}
