package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// exportUser is GET /zato/sso/user/export: everything held about the caller, or with user_id
// about any user (to a super-user). Every check, and the user and sessions, come before the
// answer starts, so that they fail as any call does; the attributes then stream.
func (s *server) exportUser(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	userID := req.in.String("user_id")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	e, err := s.api.ExportUser(ctx, req.cid, userID, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return &exportReply{export: e}, nil
}

// exportReply is the answer of an export, written by streamReply as its attributes are read.
type exportReply struct {
	envelope
	export *sso.Export
}

// streamingReply is a reply whose body is written as it is produced rather than encoded whole.
type streamingReply interface {
	reply
	stream(ctx context.Context, w *bufio.Writer) error
}

// exportFlushBytes is how much of an export is buffered before it is sent on.
const exportFlushBytes = 32 << 10

// exportWriteWindow is how long each flushed part of a streamed answer may take to send: the
// server's write timeout would otherwise bound the whole of a large export.
const exportWriteWindow = 30 * time.Second

// streamReply writes a streaming reply: HTTP 200 and the body as it comes, flushed every
// exportFlushBytes. A failure once the body has started cannot change the status: it is logged,
// and the connection is aborted, so that the client sees a truncated answer, never a complete-looking one.
func (s *server) streamReply(c *gin.Context, ex *exchange, r streamingReply) {
	head := r.head()
	head.CID, head.Status, head.SubStatus = ex.cid, statusOK, []string{}
	ex.subStatus = head.SubStatus
	c.Writer.Header()["Content-Type"] = jsonContentType
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	flushed := func() {
		_ = rc.Flush()
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	}
	flushed()
	w := bufio.NewWriterSize(flushWriter{c.Writer, flushed}, exportFlushBytes)
	err := r.stream(c.Request.Context(), w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		level := slog.LevelError
		if c.Request.Context().Err() != nil {
			level = slog.LevelInfo // the client went away
		}
		s.log.Log(c.Request.Context(), level, "streaming an answer failed; aborting the connection",
			"cid", ex.cid, "route", s.routeLabel(c), "err", attrcache.AsError(err).Error())
		panic(http.ErrAbortHandler)
	}
	flushed()
}

// flushWriter writes to w and calls flushed after each write: bufio hands it full buffers.
type flushWriter struct {
	w       io.Writer
	flushed func()
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.flushed()
	return n, err
}

// exportAttr is an attribute in an export: as GET shows it, with its version.
type exportAttr struct {
	*wireAttr
	Version int64 `json:"version"`
}

// exportSession is a session in an export: as the session list shows it, with the reference
// that names it in session_attrs.
type exportSession struct {
	SessionRef string `json:"session_ref"`
	wireSession
}

// stream writes {cid, status, sub_status, user, sessions, attrs, session_attrs} (writeExport).
func (r *exportReply) stream(ctx context.Context, w *bufio.Writer) error {
	return writeExport(ctx, w, &r.envelope, r.export)
}

// WriteExport writes e to w as the export endpoint answers it, without the envelope (cid, status,
// sub_status): {user, sessions, attrs, session_attrs}. It reads e's attributes as it writes them.
func WriteExport(ctx context.Context, w io.Writer, e *sso.Export) error {
	bw := bufio.NewWriterSize(w, exportFlushBytes)
	if err := writeExport(ctx, bw, nil, e); err != nil {
		return err
	}
	return bw.Flush()
}

// writeExport writes e as one JSON object: the envelope's keys when env is not nil, then user,
// sessions, attrs (an object keyed by name) and session_attrs (an object keyed by session_ref
// of such objects). Write errors are kept by w and reported by its Flush.
func writeExport(ctx context.Context, w *bufio.Writer, env *envelope, e *sso.Export) error {
	shape := shapeRegular
	if e.Full {
		shape = shapeFull
	}
	sessions := make([]exportSession, len(e.Sessions))
	for i, s := range e.Sessions {
		sessions[i] = exportSession{SessionRef: s.Ref, wireSession: newWireSession(s.Session)}
	}
	head, err := json.Marshal(struct {
		*envelope
		User     *wireUser       `json:"user"`
		Sessions []exportSession `json:"sessions"`
	}{env, newWireUser(e.User, shape), sessions})
	if err != nil {
		return err
	}
	w.Write(head[:len(head)-1]) // the object stays open
	w.WriteString(`,"attrs":{`)
	enc := json.NewEncoder(w)
	inSessions, currentRef, first := false, "", true
	err = e.Attrs(ctx, func(ref string, v *sso.AttrValue) error {
		if ref != "" && ref != currentRef {
			if inSessions {
				w.WriteString(`},`)
			} else {
				w.WriteString(`},"session_attrs":{`)
				inSessions = true
			}
			writeJSONString(w, ref)
			w.WriteString(`:{`)
			currentRef, first = ref, true
		}
		if !first {
			w.WriteByte(',')
		}
		first = false
		writeJSONString(w, v.Name)
		w.WriteByte(':')
		return enc.Encode(exportAttr{wireAttr: newWireAttr(v), Version: v.Version}) // its newline is JSON white space
	})
	if err != nil {
		return err
	}
	if inSessions {
		w.WriteString(`}`)
	} else {
		w.WriteString(`},"session_attrs":{`)
	}
	_, err = w.WriteString(`}}`)
	return err
}

// writeJSONString writes s to w as a JSON string.
func writeJSONString(w *bufio.Writer, s string) {
	b, _ := json.Marshal(s) // a string always encodes
	w.Write(b)
}
