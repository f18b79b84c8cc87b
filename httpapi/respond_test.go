package httpapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestWriteJSONAsGin checks that writeJSON writes the response gin's c.JSON writes: the same
// status, headers and bytes (HTML characters escaped, no trailing newline), and for a value
// that cannot be encoded no body and the error in c.Errors.
func TestWriteJSONAsGin(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	tests := []struct {
		desc        string
		status      int
		contentType string // set before writing, unless ""
		value       any
	}{
		{"envelope", http.StatusOK, "", &envelope{CID: "c", Status: statusOK, SubStatus: []string{}}},
		{"error", http.StatusBadRequest, "", &errorBody{
			envelope: envelope{CID: "c", Status: statusError, SubStatus: []string{"E008002"}},
			Result:   "Error", Details: "Bad request", Message: "a <b> & \u2028 \xff é",
		}},
		{"raw value", http.StatusOK, "", &resultReply[map[string]*wireAttr]{Result: map[string]*wireAttr{
			"b": nil, "a": {Value: json.RawMessage(`{"x": "<&>", "y": [1, 2]}`)},
		}}},
		{"content type set", http.StatusForbidden, "text/plain", &envelope{CID: "c"}},
		{"not encodable", http.StatusOK, "", math.NaN()},
		{"invalid raw value", http.StatusOK, "", json.RawMessage(`{`)},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			respond := func(write func(c *gin.Context)) (*httptest.ResponseRecorder, int) {
				rec := httptest.NewRecorder()
				c, _ := gin.CreateTestContext(rec)
				if tc.contentType != "" {
					c.Header("Content-Type", tc.contentType)
				}
				write(c)
				c.Writer.WriteHeaderNow()
				if !c.IsAborted() && len(c.Errors) > 0 {
					t.Errorf("%d errors recorded, but the handler chain is not aborted", len(c.Errors))
				}
				return rec, len(c.Errors)
			}
			got, gotErrors := respond(func(c *gin.Context) { writeJSON(c, tc.status, tc.value) })
			want, wantErrors := respond(func(c *gin.Context) { c.JSON(tc.status, tc.value) })
			if got.Code != want.Code {
				t.Errorf("status %d, want %d", got.Code, want.Code)
			}
			if !reflect.DeepEqual(got.Header(), want.Header()) {
				t.Errorf("headers %v, want %v", got.Header(), want.Header())
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("body %q, want %q", got.Body, want.Body)
			}
			if gotErrors != wantErrors {
				t.Errorf("%d errors recorded, want %d", gotErrors, wantErrors)
			}
		})
	}
}
