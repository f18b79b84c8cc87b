package sso

// attrOpName names an attribute call: in errors (desc) and on the audit log, for user attributes
// (user) and for session attributes (session).
type attrOpName struct{ desc, user, session string }

var (
	auditAttrSet    = attrOpName{"set attributes", "attr.set", "session_attr.set"}
	auditAttrCreate = attrOpName{"create attributes", "attr.create", "session_attr.create"}
	auditAttrUpdate = attrOpName{"update attributes", "attr.update", "session_attr.update"}
	auditAttrGet    = attrOpName{"get attributes", "attr.get", "session_attr.get"}
	auditAttrExists = attrOpName{"check attributes", "attr.exists", "session_attr.exists"}
	auditAttrNames  = attrOpName{"list attribute names", "attr.names", "session_attr.names"}
	auditAttrDelete = attrOpName{"delete attributes", "attr.delete", "session_attr.delete"}
)

// auditNames starts the entry of an attribute call op on names, which the entry lists when they
// pass the checks of every call (a refused list is not repeated); nil when nothing is audited.
func (x *AttrAPI) auditNames(op attrOpName, names []string) *auditCall {
	name := op.user
	if x.forSession {
		name = op.session
	}
	rec := x.api.audit(name, x.cid, x.remoteAddr)
	if rec != nil && checkAttrNames(names) == nil {
		rec.entry.Attrs = names
	}
	return rec
}

// auditItems is auditNames for the names of a write's items.
func (x *AttrAPI) auditItems(op attrOpName, items []AttrItem) *auditCall {
	if x.api.cfg.Audit == nil {
		return nil
	}
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.Name
	}
	return x.auditNames(op, names)
}

// auditFacts notes on rec the caller and the owner of the attributes as f found them or, when
// f holds no session for a UST, as the UST names them.
func (x *AttrAPI) auditFacts(rec *auditCall, f *attrFacts) {
	if rec == nil {
		return
	}
	if f.caller.found {
		rec.entry.Actor = f.caller.principal.UserID
	} else {
		rec.entry.Actor, _, _ = x.api.openUST(x.ust)
	}
	switch {
	case !x.forSession:
		rec.entry.Target = x.ownerID
		if rec.entry.Target == "" {
			rec.entry.Target = rec.entry.Actor
		}
	case f.target.found:
		rec.entry.Target = f.target.principal.UserID
	default:
		rec.entry.Target, _, _ = x.api.openUST(x.targetUST)
	}
}

// from notes on r the caller and the owner of an attribute call let in.
func (r *auditCall) from(call *attrCall) {
	if r != nil {
		r.entry.Actor, r.entry.Target = call.caller.userID(), call.scope.UserID
	}
}
