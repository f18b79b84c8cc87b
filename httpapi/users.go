package httpapi

import (
	"context"
	"strings"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// credentials are what every UST-authenticated call passes to sso last: the caller's UST, app and
// address.
type credentials struct {
	ust, app, remoteAddr string
}

// readCaller reads the caller's UST (ust or current_ust) and current_app, both required.
func readCaller(req *request) credentials {
	return credentials{
		ust:        req.in.UST(true),
		app:        req.in.RequiredString("current_app"),
		remoteAddr: req.remoteAddr,
	}
}

// getUser is GET /zato/sso/user: the caller, or with user_id any user (to a super-user). A
// super-user sees every field, a regular user the regular ones alone.
func (s *server) getUser(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	userID := req.in.String("user_id")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	var view *sso.UserView
	var err error
	if userID != "" {
		view, err = s.api.GetUserByID(ctx, req.cid, userID, who.ust, who.app, who.remoteAddr)
	} else {
		view, err = s.api.GetCurrentUser(ctx, req.cid, who.ust, who.app, who.remoteAddr)
	}
	if err != nil {
		return nil, err
	}
	shape := shapeRegular
	if view.Full {
		shape = shapeFull
	}
	return &userReply{wireUser: newWireUser(view.User, shape)}, nil
}

// createUser is POST /zato/sso/user: a super-user creates a regular user.
func (s *server) createUser(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	in := req.in
	create := sso.CreateUserInput{
		Username:           in.String("username"),
		Password:           in.OptionalString("password"),
		Email:              in.OptionalString("email"),
		DisplayName:        in.OptionalString("display_name"),
		FirstName:          in.OptionalString("first_name"),
		MiddleName:         in.OptionalString("middle_name"),
		LastName:           in.OptionalString("last_name"),
		IsLocked:           in.Bool("is_locked"),
		PasswordMustChange: in.Bool("password_must_change"),
		IsTOTPEnabled:      in.Bool("is_totp_enabled"),
		TOTPKey:            in.OptionalString("totp_key"),
		TOTPLabel:          in.OptionalString("totp_label"),
		SignUpStatus:       in.String("sign_up_status"),
		AutoApprove:        in.Bool("auto_approve"),
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	u, err := s.api.CreateUser(ctx, req.cid, create, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	created := newWireUser(u, shapeCreated)
	if create.Email != nil {
		created.userEmail = &userEmail{Email: u.Email}
	}
	return &userReply{wireUser: created}, nil
}

// updateKeys are the keys of PATCH /zato/sso/user that name columns, as sso reads them.
var updateKeys = sso.UpdateKeys()

// updateUser is PATCH /zato/sso/user. sso gets the update keys as they were decoded, so a JSON
// null (nil) stays apart from an absent key, and it filters and checks them; a boolean key sent
// as "true" or "false" (as a query string sends it) is given as a bool. A non-empty user_id
// selects UpdateUserByID.
func (s *server) updateUser(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	in := req.in
	userID := in.String("user_id")
	if err := in.Err(); err != nil {
		return nil, err
	}
	data := make(map[string]any, len(updateKeys))
	for _, key := range updateKeys {
		value, ok := in.value(key)
		if !ok {
			continue
		}
		if text, isText := value.(string); isText && sso.IsBoolUpdateKey(key) {
			if b, isBool := parseBoolText(text); isBool {
				value = b
			}
		}
		data[key] = value
	}
	var err error
	if userID != "" {
		err = s.api.UpdateUserByID(ctx, req.cid, userID, data, who.ust, who.app, who.remoteAddr)
	} else {
		err = s.api.UpdateCurrentUser(ctx, req.cid, data, who.ust, who.app, who.remoteAddr)
	}
	if err != nil {
		return nil, err
	}
	return &envelope{}, nil
}

// userActionFunc is an sso call that a super-user makes on the user userID.
type userActionFunc func(ctx context.Context, cid, userID, ust, app, remoteAddr string) error

// userAction returns the endpoint that reads the caller and user_id (required) and makes call:
// approve, reject, lock, unlock and delete.
func (s *server) userAction(call userActionFunc) endpoint {
	return func(ctx context.Context, req *request) (reply, error) {
		who := readCaller(req)
		userID := req.in.RequiredString("user_id")
		if err := req.in.Err(); err != nil {
			return nil, err
		}
		if err := call(ctx, req.cid, userID, who.ust, who.app, who.remoteAddr); err != nil {
			return nil, err
		}
		return &envelope{}, nil
	}
}

// changePassword is PATCH /zato/sso/user/password. It reads new_password, old_password,
// user_id, password_expiry (days) and must_change, and ignores every other key.
func (s *server) changePassword(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	in := req.in
	change := sso.ChangePasswordInput{
		NewPassword:        in.RequiredString("new_password"),
		OldPassword:        in.String("old_password"),
		UserID:             in.String("user_id"),
		PasswordExpiryDays: in.Int("password_expiry"),
		MustChange:         in.Bool("must_change"),
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	if err := s.api.ChangePassword(ctx, req.cid, change, who.ust, who.app, who.remoteAddr); err != nil {
		return nil, err
	}
	return &envelope{}, nil
}

// resetTOTPKey is PATCH /zato/sso/user/totp: it sets the TOTP key (generated when empty) and
// label of the caller, or of user_id, and answers the key.
func (s *server) resetTOTPKey(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	in := req.in
	key := in.RequiredString("totp_key")
	label := in.RequiredString("totp_label")
	userID := in.String("user_id")
	if err := in.Err(); err != nil {
		return nil, err
	}
	key, err := s.api.ResetTOTPKey(ctx, req.cid, userID, key, label, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return &totpReply{TOTPKey: key}, nil
}

// searchUsers is /zato/sso/user/search (zato-sso-reference.md §2.4); super-user only.
func (s *server) searchUsers(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	in := req.in
	search := sso.SearchInput{
		UserQuery: attrcache.UserQuery{
			UserID:         in.String("user_id"),
			Username:       in.String("username"),
			Email:          in.String("email"),
			DisplayName:    in.String("display_name"),
			FirstName:      in.String("first_name"),
			MiddleName:     in.String("middle_name"),
			LastName:       in.String("last_name"),
			SignUpStatus:   in.String("sign_up_status"),
			ApprovalStatus: in.String("approval_status"),
			NameOpOr:       strings.EqualFold(in.String("name_op"), "or"),
			NameExact:      in.Bool("is_name_exact"),
		},
		Paginate: in.Bool("paginate"),
		CurPage:  in.Int("cur_page"),
		PageSize: in.Int("page_size"),
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	res, err := s.api.Search(ctx, req.cid, search, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return newSearchReply(res), nil
}
