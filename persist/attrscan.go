package persist

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/attrcache/attrcache"
)

// queryAttrs runs a query of attrColumns, of one scope, and returns its attributes keyed by
// name. Errors are already mapped.
func queryAttrs(ctx context.Context, q querier, query string, args ...any) (map[string]*attrcache.Attr, error) {
	list, err := queryAttrRows(ctx, q, query, args...)
	if err != nil {
		return nil, err
	}
	attrs := make(map[string]*attrcache.Attr, len(list))
	for _, a := range list {
		attrs[a.Name] = a
	}
	return attrs, nil
}

// queryAttrRows runs a query of attrColumns and returns its attributes. Errors are already
// mapped.
func queryAttrRows(ctx context.Context, q querier, query string, args ...any) ([]*attrcache.Attr, error) {
	return queryEach(ctx, q, scanAttrRow, query, args...)
}

// scanAttrRows reads the attributes of rows, a result set of attrColumns, to its end; it does
// not close rows. Errors are not mapped.
func scanAttrRows(rows *sql.Rows) ([]*attrcache.Attr, error) {
	var attrs []*attrcache.Attr
	for rows.Next() {
		a, err := scanAttrRow(rows)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	return attrs, rows.Err()
}

// scanAttrRow reads the attribute of the current row of rows, a result set of attrColumns.
func scanAttrRow(rows *sql.Rows) (*attrcache.Attr, error) {
	var a attrcache.Attr
	err := rows.Scan(&a.Scope.UserID, &a.Scope.Session, &a.Name, &a.Value, &a.IsEncrypted,
		&a.CreationTime, &a.LastModified, &a.ExpirationTime, &a.Version)
	return &a, err
}

// queryNames runs a query of one column of names and returns them. Errors are already mapped.
func queryNames(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	return queryEach(ctx, q, func(rows *sql.Rows) (name string, err error) {
		err = rows.Scan(&name)
		return name, err
	}, query, args...)
}

// queryAttrKeys runs a query of the key columns of sso_attr (user_id, ust_hash, name) and
// returns its keys. Errors are already mapped.
func queryAttrKeys(ctx context.Context, q querier, query string, args ...any) ([]attrKey, error) {
	return queryEach(ctx, q, func(rows *sql.Rows) (key attrKey, err error) {
		err = rows.Scan(&key.scope.UserID, &key.scope.Session, &key.name)
		return key, err
	}, query, args...)
}

// queryEach runs query and returns what scan reads from each of its rows, in their order.
// Errors are already mapped.
func queryEach[T any](ctx context.Context, q querier, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var all []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapError(err)
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return all, nil
}

// attrsByKey returns attrs, read back after a write of keys, keyed by key; an error when one of
// keys is missing.
func attrsByKey(attrs []*attrcache.Attr, keys []attrKey) (map[attrKey]*attrcache.Attr, error) {
	byKey := make(map[attrKey]*attrcache.Attr, len(attrs))
	for _, a := range attrs {
		byKey[attrKey{scope: a.Scope, name: a.Name}] = a
	}
	for _, key := range keys {
		if byKey[key] == nil {
			return nil, fmt.Errorf("attribute %q was not stored", key.name)
		}
	}
	return byKey, nil
}
