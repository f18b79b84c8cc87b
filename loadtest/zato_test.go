package loadtest

import (
	"strings"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string
	}{
		{"http://127.0.0.1:17010", ""},
		{"http://127.9.9.9:80/", ""},
		{"http://[::1]:17010", ""},
		{"https://LocalHost:17010", ""},
		{"http://10.0.0.1:17010", "not a loopback address"},
		{"http://example.com", "not a loopback address"},
		{"http://localhost.example.com", "not a loopback address"},
		{"ftp://127.0.0.1", "want an http or https URL"},
		{"127.0.0.1:17010", "first path segment"},
		{"localhost:17010", "want an http or https URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckLoopback(tt.url)
			if tt.wantErr == "" && err != nil {
				t.Errorf("CheckLoopback: %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("CheckLoopback: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestAnswerCode(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"ok", 200, `{"cid":"x","status":"ok","sub_status":[]}`, ""},
		{"warning", 200, `{"status":"warning","sub_status":["W003005"]}`, ""},
		{"refused", 403, `{"status":"error","sub_status":["E005001"]}`, "E005001 (HTTP 403)"},
		{"error with HTTP 200", 200, `{"status":"error","sub_status":["E004001"]}`, "E004001 (HTTP 200)"},
		{"no sub_status", 502, `{}`, "no sub_status (HTTP 502)"},
		{"not JSON", 502, `Bad Gateway`, "malformed answer (HTTP 502)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := answerCode(tt.status, []byte(tt.body), nil); got != tt.want {
				t.Errorf("answerCode(%d, %s) = %q, want %q", tt.status, tt.body, got, tt.want)
			}
		})
	}
}
