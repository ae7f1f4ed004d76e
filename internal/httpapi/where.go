package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/where"
)

// applyWhere reads ?where= (the filter language of `stent list --where`) into f in
// place of the separate filter parameters, answering 400 when it is malformed or comes
// with them; false when it answered.
func (a *API) applyWhere(w http.ResponseWriter, q url.Values, f *backend.ListFilter) bool {
	expr := q.Get("where")
	if expr == "" {
		return true
	}
	for _, p := range []string{"status", "script", "id_prefix", "parent", "queue"} {
		if q.Has(p) {
			a.problem(w, http.StatusBadRequest, "invalid-request", "two filters", fmt.Sprintf("give where or %s, not both", p))
			return false
		}
	}
	wf, err := where.Parse(expr, time.Now())
	if err != nil {
		a.problem(w, http.StatusBadRequest, "invalid-request", "bad where", err.Error())
		return false
	}
	wf.After, wf.Limit, wf.RootOnly = f.After, f.Limit, q.Get("all") != "true" && wf.ParentID == ""
	*f = wf
	return true
}
