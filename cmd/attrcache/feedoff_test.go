package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
)

// TestServeWithoutFeedOrAudit: with changes.feed false and audit.sink none, writes still log
// their changes (the cache's coherence needs them), the change feed answers 503 E008004, and no
// audit line is written or counted.
func TestServeWithoutFeedOrAudit(t *testing.T) {
	unique := strings.ToLower(attrcache.NewUserID()[len("zusr"):])
	username, password := "unfed-"+unique, "Unf3d-"+unique
	userID := createUser(t, "create-user", username, password)
	s := startServe(t, map[string]string{"ATTRCACHE_CHANGES_FEED": "false", "ATTRCACHE_AUDIT_SINK": "none"})

	ust := s.login(t, username, password, "")
	s.mustCall(t, http.MethodPut, pathUserAttr, map[string]any{"ust": ust, "current_app": testApp, "name": "theme", "value": "dark"})
	var logged int
	err := openTestDB(t).SQL().QueryRowContext(t.Context(),
		"SELECT COUNT(*) FROM sso_change WHERE entries LIKE CONCAT('%', ?, '%theme%')", userID).Scan(&logged)
	if err != nil || logged == 0 {
		t.Errorf("change log rows of the write: %d (%v), want at least 1", logged, err)
	}

	status, answer := s.call(t, http.MethodGet, pathUserAttr+"/changes", map[string]any{"ust": ust, "current_app": testApp})
	if sub, _ := answer["sub_status"].([]any); status != http.StatusServiceUnavailable || len(sub) != 1 || sub[0] != "E008004" {
		t.Errorf("the change feed answered HTTP %d %v, want 503 with E008004", status, answer)
	}

	if _, counted := s.scrape(t)["attrcache_audit_lines_total"]; counted {
		t.Error("/metrics counts audit lines with audit.sink none")
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.stderr.String(), `"operation":`) {
		t.Errorf("standard error holds an audit line with audit.sink none:\n%s", s.stderr)
	}
}
