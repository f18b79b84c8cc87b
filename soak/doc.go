// Package soak holds attrcache's soak run, a test behind the build tag soak that `make soak`
// runs: minutes of mixed attribute load with expiring attributes on the whole in-process stack
// (MySQL store with group commit and purger, Redis cache, Go API, HTTP server), sampling memory
// and goroutines, then checking that every attribute agrees across the API, Redis and MySQL and
// that memory and goroutines stayed flat. It does not run in `go test ./...`.
package soak
