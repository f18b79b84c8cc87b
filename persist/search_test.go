package persist

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// searchUsers stores a set of users in a database of their own and returns the store and the
// users by username.
func searchUsers(t *testing.T) (*DB, map[string]*attrcache.User) {
	t.Helper()
	db := freshStore(t, "persist_search")
	base := attrcache.Now()
	users := make(map[string]*attrcache.User)
	for i, spec := range []struct {
		username                     string
		display, first, middle, last *string
		signUpStatus, approvalStatus string
	}{
		{"alice", ptr("Alice Smith"), ptr("Alice"), nil, ptr("Smith"), attrcache.SignUpFinal, attrcache.ApprovalApproved},
		{"bob", ptr("Bob_Jones"), ptr("Bob"), nil, ptr("Jones"), attrcache.SignUpFinal, attrcache.ApprovalBeforeDecision},
		{"carol", ptr("Carol 100%"), ptr("Carol"), ptr("Ann"), ptr("Smith"), attrcache.SignUpBeforeConfirmation, attrcache.ApprovalApproved},
		{"dave", nil, ptr("Dave"), nil, ptr("Smithers"), attrcache.SignUpFinal, attrcache.ApprovalApproved},
		{"zed", ptr("Same"), ptr("Zed"), nil, ptr("Brown"), attrcache.SignUpFinal, attrcache.ApprovalRejected},
		{"amy", ptr("Same"), ptr("Amy"), nil, ptr("Brown"), attrcache.SignUpFinal, attrcache.ApprovalApproved},
	} {
		u := newUser()
		u.Username = spec.username
		u.DisplayName, u.FirstName, u.MiddleName, u.LastName = spec.display, spec.first, spec.middle, spec.last
		u.SignUpStatus, u.ApprovalStatus = spec.signUpStatus, spec.approvalStatus
		u.SignUpTime = base.Add(time.Duration(i) * time.Second)
		users[spec.username] = createUser(t, db, u)
	}
	return db, users
}

func TestSearchUsers(t *testing.T) {
	db, users := searchUsers(t)
	// Every user, in the search order: NULL display names first, then by display_name (byte
	// order), username.
	all := []string{"dave", "alice", "bob", "carol", "amy", "zed"}

	tests := []struct {
		name      string
		q         attrcache.UserQuery
		want      []string
		wantTotal int
	}{
		{"no filter", attrcache.UserQuery{}, all, len(all)},
		{"user_id wins over everything", attrcache.UserQuery{UserID: users["alice"].UserID, Username: "bob", LastName: "jones"}, []string{"alice"}, 1},
		{"unknown user_id wins too", attrcache.UserQuery{UserID: attrcache.NewUserID(), Username: "bob"}, nil, 0},
		{"username wins over names", attrcache.UserQuery{Username: "bob", LastName: "smith", Email: "x@example.com"}, []string{"bob"}, 1},
		{"username is exact", attrcache.UserQuery{Username: "BOB"}, nil, 0},
		{"last name contains, any case", attrcache.UserQuery{LastName: "smith"}, []string{"dave", "alice", "carol"}, 3},
		{"last name exact", attrcache.UserQuery{LastName: "smith", NameExact: true}, []string{"alice", "carol"}, 2},
		{"names joined with AND", attrcache.UserQuery{FirstName: "alice", LastName: "smith"}, []string{"alice"}, 1},
		{"names joined with OR", attrcache.UserQuery{FirstName: "bob", LastName: "smith", NameOpOr: true}, []string{"dave", "alice", "bob", "carol"}, 4},
		{"middle name", attrcache.UserQuery{MiddleName: "an"}, []string{"carol"}, 1},
		{"underscore is literal", attrcache.UserQuery{DisplayName: "_"}, []string{"bob"}, 1},
		{"percent is literal", attrcache.UserQuery{DisplayName: "%"}, []string{"carol"}, 1},
		{"escape character is literal", attrcache.UserQuery{DisplayName: "!"}, nil, 0},
		{"sign-up status", attrcache.UserQuery{SignUpStatus: attrcache.SignUpBeforeConfirmation}, []string{"carol"}, 1},
		{"approval status with names", attrcache.UserQuery{ApprovalStatus: attrcache.ApprovalApproved, LastName: "smith"}, []string{"dave", "alice", "carol"}, 3},
		{"OR names stay within the status filter", attrcache.UserQuery{ApprovalStatus: attrcache.ApprovalApproved, FirstName: "bob", LastName: "brown", NameOpOr: true}, []string{"amy"}, 1},
		{"page", attrcache.UserQuery{Offset: 1, Limit: 2}, all[1:3], len(all)},
		{"last page", attrcache.UserQuery{Offset: 4, Limit: 10}, all[4:], len(all)},
		{"past the end", attrcache.UserQuery{Offset: 10, Limit: 2}, nil, len(all)},
		{"offset without limit", attrcache.UserQuery{Offset: 3}, all[3:], len(all)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total, err := db.SearchUsers(t.Context(), tt.q)
			if err != nil {
				t.Fatalf("SearchUsers: %v", err)
			}
			var names []string
			for _, u := range got {
				names = append(names, u.Username)
			}
			if !slices.Equal(names, tt.want) || total != tt.wantTotal {
				t.Errorf("SearchUsers = %v, total %d; want %v, total %d", names, total, tt.want, tt.wantTotal)
			}
		})
	}

	t.Run("users are returned whole", func(t *testing.T) {
		got, _, err := db.SearchUsers(t.Context(), attrcache.UserQuery{Username: "carol"})
		if err != nil || len(got) != 1 {
			t.Fatalf("SearchUsers = %v, %v", got, err)
		}
		if want := users["carol"]; got[0].Version != want.Version || *got[0].MiddleName != *want.MiddleName {
			t.Errorf("got %+v, want %+v", got[0], want)
		}
	})
}

func TestSearchUsersErrors(t *testing.T) {
	t.Run("e-mail", func(t *testing.T) {
		_, _, err := testDB.SearchUsers(t.Context(), attrcache.UserQuery{Email: "alice@example.com"})
		var domainErr *attrcache.Error
		if !errors.As(err, &domainErr) || domainErr.Kind != attrcache.KindDenied || domainErr.Code != attrcache.CodeInvalidInput {
			t.Fatalf("error = %v, want a denied %s", err, attrcache.CodeInvalidInput)
		}
		if domainErr.Message == "" {
			t.Error("the error has no message for the client")
		}
	})
	for _, q := range []attrcache.UserQuery{{Offset: -1}, {Limit: -1}} {
		if _, _, err := testDB.SearchUsers(t.Context(), q); err == nil {
			t.Errorf("SearchUsers(%+v): got nil error, want one", q)
		}
	}
}
