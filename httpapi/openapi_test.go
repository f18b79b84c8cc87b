package httpapi_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gin-gonic/gin"
	"go.yaml.in/yaml/v3"

	"github.com/attrcache/attrcache"
)

// openAPIFile is the OpenAPI description of the router.
const openAPIFile = "openapi.yaml"

// anyMethodKey marks a path item whose one operation every method of anyMethods reaches: the
// paths Zato serves as plain services (login, logout, search).
const anyMethodKey = "x-attrcache-any-method"

// anyMethods are the methods that reach a path marked with anyMethodKey.
var anyMethods = []string{http.MethodDelete, http.MethodGet, http.MethodPatch, http.MethodPost, http.MethodPut}

// operationKeys are the keys of an OpenAPI path item that hold an operation.
var operationKeys = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// readOpenAPI returns openapi.yaml decoded, failing the test when it is not an OpenAPI 3
// document with paths.
func readOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIFile, err)
	}
	if version, _ := doc["openapi"].(string); !strings.HasPrefix(version, "3.") {
		t.Fatalf("%s: openapi = %v, want 3.x", openAPIFile, doc["openapi"])
	}
	if _, ok := doc["paths"].(map[string]any); !ok {
		t.Fatalf("%s: no paths", openAPIFile)
	}
	return doc
}

// pathItems returns the path items of doc by path.
func pathItems(doc map[string]any) map[string]map[string]any {
	items := make(map[string]map[string]any)
	for path, item := range doc["paths"].(map[string]any) {
		items[path], _ = item.(map[string]any)
	}
	return items
}

// operations returns the operations of a path item by their lower-case key.
func operations(item map[string]any) map[string]map[string]any {
	ops := make(map[string]map[string]any)
	for _, key := range operationKeys {
		if op, ok := item[key].(map[string]any); ok {
			ops[key] = op
		}
	}
	return ops
}

// describedMethods returns the HTTP methods the path item describes, sorted: its operations', or
// anyMethods for a path marked with anyMethodKey, which must describe one operation.
func describedMethods(t *testing.T, path string, item map[string]any) []string {
	t.Helper()
	ops := operations(item)
	if item[anyMethodKey] == true {
		if len(ops) != 1 {
			t.Errorf("%s is marked %s and describes %d operations, want 1", path, anyMethodKey, len(ops))
		}
		return anyMethods
	}
	var methods []string
	for key := range ops {
		methods = append(methods, strings.ToUpper(key))
	}
	slices.Sort(methods)
	return methods
}

// servedMethods returns the methods the router serves on each path, sorted.
func servedMethods(t *testing.T) map[string][]string {
	t.Helper()
	engine, ok := handler.(*gin.Engine)
	if !ok {
		t.Fatalf("NewServer returned %T, want *gin.Engine", handler)
	}
	served := make(map[string][]string)
	for _, route := range engine.Routes() {
		served[route.Path] = append(served[route.Path], route.Method)
	}
	for _, methods := range served {
		slices.Sort(methods)
	}
	return served
}

func TestOpenAPIDescribesEveryRouteAndNoOther(t *testing.T) {
	items := pathItems(readOpenAPI(t))
	served := servedMethods(t)
	paths := slices.Sorted(maps.Keys(served))
	for path := range items {
		if _, ok := served[path]; !ok {
			paths = append(paths, path)
		}
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			item, described := items[path]
			want, routed := served[path]
			switch {
			case !described:
				t.Fatalf("the router serves %v and %s does not describe the path", want, openAPIFile)
			case !routed:
				t.Fatalf("%s describes the path and the router does not serve it", openAPIFile)
			}
			if got := describedMethods(t, path, item); !slices.Equal(got, want) {
				t.Errorf("%s describes %v, the router serves %v", openAPIFile, got, want)
			}
		})
	}
}

func TestOpenAPIOperationsDocumentTheirErrors(t *testing.T) {
	// Every Zato path reads a JSON body (400, 413) and may meet a bug (500) or a backend that is
	// down (503); the throttles of login, password change and sign-up answer 429; attribute
	// writes and deletes, a compare-and-set's 409.
	zatoErrors := []string{"400", "413", "500", "503"}
	throttled := map[string]bool{"POST /zato/sso/user/login": true, "PATCH /zato/sso/user/password": true, "POST /zato/sso/user/signup": true}
	attrWritePaths := map[string]bool{"/zato/sso/user/attr": true, "/zato/sso/session/attr": true}
	ids := make(map[string]string) // operationId → where it was met
	for path, item := range pathItems(readOpenAPI(t)) {
		for key, op := range operations(item) {
			where := strings.ToUpper(key) + " " + path
			t.Run(where, func(t *testing.T) {
				id, _ := op["operationId"].(string)
				if id == "" {
					t.Error("no operationId")
				} else if other, dup := ids[id]; dup {
					t.Errorf("operationId %s is also %s's", id, other)
				}
				ids[id] = where

				responses, _ := op["responses"].(map[string]any)
				want := []string{"200"}
				if strings.HasPrefix(path, "/zato/sso/") {
					want = append(want, zatoErrors...)
				}
				if throttled[where] {
					want = append(want, "429")
				}
				if attrWritePaths[path] && key != "get" {
					want = append(want, "409")
				}
				for _, status := range want {
					if _, ok := responses[status]; !ok {
						t.Errorf("responses %v lack %s", slices.Sorted(maps.Keys(responses)), status)
					}
				}
			})
		}
	}
}

func TestOpenAPIReferencesResolve(t *testing.T) {
	doc := readOpenAPI(t)
	refs := make(map[string]bool)
	collectRefs(doc, refs)
	if len(refs) == 0 {
		t.Fatal("no $ref found")
	}
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		if _, err := resolvePointer(doc, ref); err != nil {
			t.Errorf("$ref %s: %v", ref, err)
		}
	}
}

func TestOpenAPIHasNoEmptyValues(t *testing.T) {
	// No key of the document is meant to be null: one that is betrays YAML read differently
	// from how it was written, like a comma in an unquoted flow-mapping value, which starts a
	// key of its own.
	var walk func(where string, node any)
	walk = func(where string, node any) {
		switch n := node.(type) {
		case nil:
			t.Errorf("%s is empty", where)
		case map[string]any:
			for key, value := range n {
				walk(where+"/"+key, value)
			}
		case []any:
			for i, value := range n {
				walk(fmt.Sprintf("%s/%d", where, i), value)
			}
		}
	}
	walk("#", readOpenAPI(t))
}

// collectRefs adds to refs every $ref value found in node.
func collectRefs(node any, refs map[string]bool) {
	switch n := node.(type) {
	case map[string]any:
		for key, value := range n {
			if ref, ok := value.(string); ok && key == "$ref" {
				refs[ref] = true
				continue
			}
			collectRefs(value, refs)
		}
	case []any:
		for _, value := range n {
			collectRefs(value, refs)
		}
	}
}

// resolvePointer returns the node of doc that ref, a JSON pointer within the document
// ("#/a/b"), names.
func resolvePointer(doc map[string]any, ref string) (any, error) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a reference within the document")
	}
	var node any = doc
	for token := range strings.SplitSeq(pointer, "/") {
		token = strings.NewReplacer("~1", "/", "~0", "~").Replace(token)
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q is not inside an object", token)
		}
		if node, ok = m[token]; !ok {
			return nil, fmt.Errorf("no %q", token)
		}
	}
	return node, nil
}

// TestOpenAPIValidatesAndGenerates loads openapi.yaml with an OpenAPI validator, as client
// generators do, and checks that no component name stands in two sections: oapi-codegen, run
// without options, refuses a document where one does.
func TestOpenAPIValidatesAndGenerates(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("loading %s: %v", openAPIFile, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s does not validate: %v", openAPIFile, err)
	}
	sections := map[string][]string{}
	add := func(section string, names []string) {
		for _, name := range names {
			sections[name] = append(sections[name], section)
		}
	}
	add("schemas", slices.Collect(maps.Keys(doc.Components.Schemas)))
	add("parameters", slices.Collect(maps.Keys(doc.Components.Parameters)))
	add("headers", slices.Collect(maps.Keys(doc.Components.Headers)))
	add("requestBodies", slices.Collect(maps.Keys(doc.Components.RequestBodies)))
	add("responses", slices.Collect(maps.Keys(doc.Components.Responses)))
	for name, in := range sections {
		if len(in) > 1 {
			t.Errorf("component %s is named in %v; a generated client needs one name per component", name, in)
		}
	}
}

// describedCall serves c on the default test server, fails the test unless it answers status,
// and checks the answer (status, headers, body) against the operation openapi.yaml describes;
// a call whose input is well-formed (an answer below 400, or 409) is checked against the request
// schema as well. It returns the answer.
func describedCall(t *testing.T, doc *openapi3.T, c call, status int) *response {
	t.Helper()
	if c.header == nil {
		c.header = map[string]string{}
	}
	c.header["Content-Type"] = "application/json"
	res := serve(handler, c)
	if res.status != status {
		t.Fatalf("%s %s: HTTP %d %s, want %d", c.method, c.path, res.status, res.raw, status)
	}
	item := doc.Paths.Find(c.path)
	if item == nil || item.GetOperation(c.method) == nil {
		t.Fatalf("%s does not describe %s %s", openAPIFile, c.method, c.path)
	}
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	options := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.RequestValidationInput{
		Request: req,
		Route:   &routers.Route{Spec: doc, Path: c.path, PathItem: item, Method: c.method, Operation: item.GetOperation(c.method)},
		Options: options,
	}
	if status < http.StatusBadRequest || status == http.StatusConflict {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s %s: the request does not match %s: %v", c.method, c.path, c.body, openAPIFile, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.status, Header: res.header, Options: options}
	out.SetBodyBytes(res.raw)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s %s: the answer HTTP %d %s does not match %s: %v", c.method, c.path, res.status, res.raw, openAPIFile, err)
	}
	return res
}

// TestOpenAPIDescribesAttrAnswers checks real answers of the attribute endpoints against
// openapi.yaml: versions and the ETag, compare-and-set writes and deletes, their 409, per-item
// results, malformed conditions, and the export's versions.
func TestOpenAPIDescribesAttrAnswers(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("loading %s: %v", openAPIFile, err)
	}
	for _, target := range bothScopes(t) {
		t.Run(target.name, func(t *testing.T) {
			send := func(method string, keys map[string]any, header map[string]string, status int) *response {
				t.Helper()
				return describedCall(t, doc, call{method: method, path: target.base, body: jsonOf(target.input(keys)), header: header}, status)
			}
			v1 := versionOf(t, send(http.MethodPut, map[string]any{"name": "n", "value": 1}, nil, http.StatusOK))
			got := send(http.MethodGet, map[string]any{"name": "n"}, nil, http.StatusOK)
			if etag := got.header.Get("ETag"); etag != `"`+strconv.FormatInt(v1, 10)+`"` {
				t.Errorf("ETag %q, want version %d", etag, v1)
			}
			send(http.MethodGet, map[string]any{"data": []any{"n", "missing"}}, nil, http.StatusOK)

			v2 := versionOf(t, send(http.MethodPut, map[string]any{"name": "n", "value": 2, "if_version": v1}, nil, http.StatusOK))
			send(http.MethodPut, map[string]any{"name": "n", "value": 3, "if_version": v1}, nil, http.StatusConflict)
			send(http.MethodPatch, map[string]any{"name": "n", "value": 3}, map[string]string{"If-Match": `"` + strconv.FormatInt(v1, 10) + `"`}, http.StatusConflict)
			send(http.MethodPost, map[string]any{"name": "fresh", "value": 1, "if_version": 0}, nil, http.StatusOK)
			send(http.MethodPatch, map[string]any{"name": "absent", "value": 1}, nil, http.StatusOK)
			send(http.MethodPut, map[string]any{"data": []any{
				map[string]any{"name": "n", "value": 4, "if_version": v2}, item("other", 1)}}, nil, http.StatusOK)

			res := send(http.MethodPut, map[string]any{"atomic": false, "data": []any{
				item("ok", 1), map[string]any{"name": "n", "value": 5, "if_version": v1}, item("ok", 2)}}, nil, http.StatusOK)
			wantResults(t, res, []string{"ok", attrcache.CodeVersionMismatch, attrcache.CodeInvalidInput})
			res = send(http.MethodDelete, map[string]any{"atomic": false, "data": []any{
				"ok", map[string]any{"name": "other", "if_version": 0}}}, nil, http.StatusOK)
			wantResults(t, res, []string{"ok", attrcache.CodeVersionMismatch})

			send(http.MethodDelete, map[string]any{"name": "n", "if_version": v1}, nil, http.StatusConflict)
			send(http.MethodDelete, map[string]any{"data": []any{"n", "fresh"}}, nil, http.StatusOK)
			send(http.MethodPut, map[string]any{"name": "n", "value": 1, "if_version": "x"}, nil, http.StatusBadRequest)
			send(http.MethodPut, map[string]any{"name": "n", "value": 1, "if_version": -1}, nil, http.StatusForbidden)
		})
	}
	t.Run("export", func(t *testing.T) {
		u := newUser(t, false, nil)
		wantOK(t, userAttrs(u).call(t, http.MethodPut, "", map[string]any{"name": "n", "value": 1}))
		describedCall(t, doc, call{method: http.MethodGet, path: "/zato/sso/user/export", body: jsonOf(withCaller(u, nil))}, http.StatusOK)
	})
}
