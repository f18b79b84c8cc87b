package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"

	"github.com/attrcache/attrcache"
)

// RouteKeys is a route and the keys its endpoint reads.
type RouteKeys struct {
	Method, Path string
	Keys         []string
}

// tableServer is a server with default options, enough to build the route table.
func tableServer() *server {
	return &server{maxBodyBytes: defaultMaxBodyBytes, maxAttrValueBytes: attrcache.DefaultMaxValueBytes}
}

// Routes lists every route of NewServer but /metrics, with the keys its endpoint reads, sorted.
func Routes() []RouteKeys {
	var out []RouteKeys
	for _, rt := range tableServer().routeTable() {
		keys := make([]string, 0, len(rt.input.keys))
		for key := range rt.input.keys {
			keys = append(keys, key)
		}
		slices.Sort(keys)
		out = append(out, RouteKeys{rt.method, rt.path, keys})
	}
	return out
}

// ReadInput reads r as its route's endpoint does and returns the values the endpoint is given.
func ReadInput(r *http.Request) (map[string]any, error) {
	for _, rt := range tableServer().routeTable() {
		if rt.method == r.Method && rt.path == r.URL.Path {
			req, err := readRequest(r, httptest.NewRecorder(), &exchange{}, rt.input, false)
			if err != nil {
				return nil, err
			}
			return req.in.values, nil
		}
	}
	return nil, fmt.Errorf("no route %s %s", r.Method, r.URL.Path)
}
