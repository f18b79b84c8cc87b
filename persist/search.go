package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/attrcache/attrcache"
)

// likeEscaper escapes the LIKE wildcards of a search term; '!' is the escape character (a
// backslash would depend on the server's NO_BACKSLASH_ESCAPES mode).
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// noLimit is the largest row count MySQL accepts in LIMIT: an OFFSET needs a LIMIT.
const noLimit = "18446744073709551615"

// SearchUsers returns one page of the users matching q, ordered by display_name, username,
// sign_up_time and user_id, and the number of all matches (zato-sso-reference.md §2.4). A
// UserID alone decides the matches when set, else a Username; only without either do the name,
// sign-up status and approval status filters apply. Name filters compare the upper-cased term
// with the upper-cased names, whole when q.NameExact and as a substring otherwise, and are
// joined with OR when q.NameOpOr. E-mail addresses are sealed, so an e-mail filter that applies
// gives an *attrcache.Error of kind denied with code E008002.
func (db *DB) SearchUsers(ctx context.Context, q attrcache.UserQuery) (users []*attrcache.User, total int, err error) {
	if q.Offset < 0 || q.Limit < 0 {
		return nil, 0, errors.New("persist: search users: negative offset or limit")
	}
	where, args, err := userSearchFilter(q)
	if err != nil {
		return nil, 0, err
	}
	countStmt := "SELECT COUNT(*) FROM sso_user" + where
	pageStmt := "SELECT " + userColumns + " FROM sso_user" + where +
		" ORDER BY display_name, username, sign_up_time, user_id" + pageClause(q.Offset, q.Limit)

	err = db.inTx(ctx, readOnly, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, countStmt, args...).Scan(&total); err != nil {
			return mapError(err)
		}
		users, err = db.queryUsers(ctx, tx, pageStmt, args...)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("persist: search users: %w", err)
	}
	return users, total, nil
}

// userSearchFilter returns the WHERE clause of q ("" when nothing filters) and its arguments.
func userSearchFilter(q attrcache.UserQuery) (string, []any, error) {
	switch {
	case q.UserID != "":
		return " WHERE user_id = ?", []any{q.UserID}, nil
	case q.Username != "":
		return " WHERE username = ?", []any{q.Username}, nil
	case q.Email != "":
		return "", nil, attrcache.InvalidInput("search by e-mail is not supported: e-mail addresses are stored encrypted")
	}

	var names, conditions []string
	var args []any
	for _, f := range []struct{ column, term string }{
		{"display_name_upper", q.DisplayName},
		{"first_name_upper", q.FirstName},
		{"middle_name_upper", q.MiddleName},
		{"last_name_upper", q.LastName},
	} {
		if f.term == "" {
			continue
		}
		term := strings.ToUpper(f.term)
		if q.NameExact {
			names = append(names, f.column+" = ?")
			args = append(args, term)
		} else {
			names = append(names, f.column+" LIKE ? ESCAPE '!'")
			args = append(args, "%"+likeEscaper.Replace(term)+"%")
		}
	}
	if len(names) > 0 {
		op := " AND "
		if q.NameOpOr {
			op = " OR "
		}
		conditions = append(conditions, "("+strings.Join(names, op)+")")
	}
	if q.SignUpStatus != "" {
		conditions = append(conditions, "sign_up_status = ?")
		args = append(args, q.SignUpStatus)
	}
	if q.ApprovalStatus != "" {
		conditions = append(conditions, "approval_status = ?")
		args = append(args, q.ApprovalStatus)
	}
	if len(conditions) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conditions, " AND "), args, nil
}

// pageClause returns the LIMIT/OFFSET clause of a page; limit 0 means no limit.
func pageClause(offset, limit int) string {
	switch {
	case limit > 0:
		return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, offset)
	case offset > 0:
		return fmt.Sprintf(" LIMIT %s OFFSET %d", noLimit, offset)
	}
	return ""
}

// queryUsers runs a query of userColumns and returns its users. Errors are already mapped.
func (db *DB) queryUsers(ctx context.Context, q querier, query string, args ...any) ([]*attrcache.User, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var users []*attrcache.User
	for rows.Next() {
		u, err := db.scanUser(rows)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return users, nil
}
