package ui

import (
	"fmt"
	"net/http"
	"time"

	"github.com/stent-go/stent/backend"
)

// deadLetterLimit is how many dead letters the page lists.
const deadLetterLimit = 200

type deadLetterRow struct {
	ID          int64
	ExecutionID string
	Seq         int
	Activity    string
	Args        string
	Error       *backend.ErrorInfo
	Status      string
	Created     time.Time
}

type deadLetterData struct {
	Status string
	Rows   []deadLetterRow
	Tabs   []chip
}

func (s *Server) deadLettersPage(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", "open", "replayed", "discarded":
	default:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("dead-letter status %q is not one of open, replayed, discarded", status))
		return
	}
	dls, err := s.b.ListDeadLetters(r.Context(), status, deadLetterLimit)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("listing dead letters: %w", err))
		return
	}
	d := &deadLetterData{Status: status}
	for _, st := range []string{"", "open", "replayed", "discarded"} {
		label := st
		if label == "" {
			label = "all"
		}
		href := "?"
		if st != "" {
			href = "?status=" + st
		}
		d.Tabs = append(d.Tabs, chip{Label: label, Status: st, Href: href, Active: st == status})
	}
	for _, dl := range dls {
		row := deadLetterRow{ID: dl.ID, ExecutionID: dl.ExecutionID, Seq: dl.Seq, Activity: dl.Activity, Error: dl.Error,
			Status: dl.Status, Created: dl.CreatedAt}
		var p backend.ActivityPayload
		if jsonDecode(dl.Payload, &p) == nil {
			row.Args = shortText(string(p.Args), 200)
		}
		d.Rows = append(d.Rows, row)
	}
	live := "dlq=1"
	if status != "" {
		live += "&status=" + status
	}
	s.render(w, r, "deadletters", page{Title: "Dead letters", Nav: "dead-letters", Live: live, Data: d})
}
