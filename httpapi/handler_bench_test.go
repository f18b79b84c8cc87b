package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attrcache/attrcache/httpapi"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/sso"
)

// BenchmarkHandler measures whole requests through NewServer, on the test MariaDB and Redis:
// a cached GET of one attribute and of ten, a PUT of a hundred (the bodies attrcache bench
// sends; the PUT commits to MariaDB), and /healthz, which reaches no backend and so shows the
// HTTP layer's own cost. The "observed" server logs
// every request as JSON and records metrics, as attrcache serve does; "bare" does neither;
// "audited" is "observed" that also writes the audit log (to io.Discard), as serve does.
func BenchmarkHandler(b *testing.B) {
	u := benchUser(b)
	value := `{"id":42,"tags":["a","b"],"note":"some text","score":1.50}`
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("bench-attr-%02d", i)
		body := fmt.Sprintf(`{"ust":%q,"current_app":%q,"name":%q,"value":%s}`, u.ust, app, names[i], value)
		if res := serve(handler, call{method: http.MethodPut, path: pathUserAttr, body: body}); res.status != http.StatusOK {
			b.Fatalf("setting %s: HTTP %d %s", names[i], res.status, res.raw)
		}
	}
	getOne := fmt.Sprintf(`{"ust":%q,"current_app":%q,"name":%q}`, u.ust, app, names[0])
	getMany := fmt.Sprintf(`{"ust":%q,"current_app":%q,"data":%s}`, u.ust, app, jsonOf(names))
	var setMany bytes.Buffer
	fmt.Fprintf(&setMany, `{"ust":%q,"current_app":%q,"data":[`, u.ust, app)
	for i := range 100 {
		if i > 0 {
			setMany.WriteByte(',')
		}
		fmt.Fprintf(&setMany, `{"name":"bench-many-%03d","value":%s}`, i, value)
	}
	setMany.WriteString("]}")

	audit := sso.NewAuditLog(io.Discard, 4<<20)
	b.Cleanup(func() { audit.Close() })
	observed := func(a *sso.API) http.Handler {
		return httpapi.NewServer(a, httpapi.Options{
			Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Metrics: metrics.New(prometheus.NewRegistry()),
		})
	}
	servers := []struct {
		desc    string
		handler http.Handler
	}{
		{"bare", handler},
		{"observed", observed(api)},
		{"audited", observed(newAPI(func(c *sso.Config) { c.Audit = audit }))},
	}
	requests := []struct {
		desc, method, path, body, want string
	}{
		{"get_attr", http.MethodGet, pathUserAttr, getOne, `"found":true`},
		{"get_attr_many_10", http.MethodGet, pathUserAttr, getMany, `"` + names[9] + `":{`},
		{"set_attr_many_100", http.MethodPut, pathUserAttr, setMany.String(), `"status":"ok"`},
		{"healthz", http.MethodGet, "/healthz", "", `"status":"ok"`},
	}
	for _, srv := range servers {
		for _, rq := range requests {
			b.Run(srv.desc+"/"+rq.desc, func(b *testing.B) {
				req := httptest.NewRequest(rq.method, rq.path, nil)
				body := []byte(rq.body)
				w := &benchWriter{header: make(http.Header)}
				send := func() {
					req.Body = io.NopCloser(bytes.NewReader(body))
					clear(w.header)
					w.status = 0
					w.body.Reset()
					srv.handler.ServeHTTP(w, req)
				}
				send()
				if w.status != http.StatusOK || !bytes.Contains(w.body.Bytes(), []byte(rq.want)) {
					b.Fatalf("HTTP %d %s, want 200 with %s", w.status, w.body.Bytes(), rq.want)
				}
				b.ReportAllocs()
				dropped := audit.Dropped()
				for b.Loop() {
					send()
				}
				if audit.Dropped() != dropped {
					b.Errorf("the audit log dropped %d lines", audit.Dropped()-dropped)
				}
			})
		}
	}
}

// benchUser creates a regular user and logs them in.
func benchUser(b *testing.B) testUser {
	b.Helper()
	in := sso.CreateUserInput{Username: uniqueName("bench")}
	password := "pass-" + in.Username
	in.Password = &password
	if _, err := api.AdminCreateUser(context.Background(), in, false); err != nil {
		b.Fatalf("AdminCreateUser: %v", err)
	}
	res := serve(handler, call{method: http.MethodPost, path: pathLogin,
		body: jsonOf(map[string]any{"username": in.Username, "password": password, "current_app": app})})
	ust, _ := res.body["ust"].(string)
	if res.status != http.StatusOK || ust == "" {
		b.Fatalf("login: HTTP %d %s", res.status, res.raw)
	}
	return testUser{username: in.Username, password: password, ust: ust}
}

// benchWriter is a ResponseWriter that a benchmark reuses, so that the loop measures the
// handler rather than a recorder's allocations.
type benchWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
