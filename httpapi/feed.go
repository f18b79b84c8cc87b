package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/sso"
)

// feedKeepAlive is how long a Server-Sent Events stream stays silent before a comment line keeps
// proxies from closing it.
const feedKeepAlive = 15 * time.Second

// wireFeedEvent is a change feed event on the wire (CONTRACT.md §10 "Change feed").
type wireFeedEvent struct {
	Cursor  string `json:"cursor"`
	Op      string `json:"op"`
	Scope   string `json:"scope"`
	UserID  string `json:"user_id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Time    string `json:"time"`
	CID     string `json:"cid"`
}

func newWireFeedEvent(e attrcache.FeedEvent) wireFeedEvent {
	scope := "user"
	if e.Session != "" {
		scope = "session"
	}
	return wireFeedEvent{Cursor: sso.FormatCursor(e), Op: string(e.Op), Scope: scope, UserID: e.UserID, Name: e.Name,
		Version: e.Version, Time: attrcache.FormatTime(e.Time), CID: e.CID}
}

// changesReply is one page of the change feed.
type changesReply struct {
	envelope
	Result []wireFeedEvent `json:"result"`
	Next   string          `json:"next"`
}

// eventStreamReply is a reply written as Server-Sent Events for as long as the client stays.
type eventStreamReply interface {
	reply
	serveEvents(c *gin.Context, ex *exchange)
}

// changes is GET /zato/sso/user/attr/changes: a page of the change feed after `after` (or the
// Last-Event-ID header), waiting up to `wait` seconds for one when there is none; with Accept:
// text/event-stream, the events as Server-Sent Events until the client leaves.
func (s *server) changes(ctx context.Context, req *request) (reply, error) {
	who := readCaller(req)
	userID := req.in.String("user_id")
	after := req.in.String("after")
	limitText, waitText := numberText(req.in, "limit"), numberText(req.in, "wait")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	if after == "" {
		after = strings.TrimSpace(req.header.Get("Last-Event-ID"))
	}
	limit, err := sso.ParseFeedLimit(limitText)
	if err != nil {
		return nil, err
	}
	wait, err := sso.ParseFeedWait(waitText)
	if err != nil {
		return nil, err
	}
	stream, err := s.api.OpenChanges(ctx, req.cid, userID, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	if wantsEventStream(req.header) {
		// The first read answers as any call does: a bad or too old cursor is an error response.
		first, err := stream.Read(ctx, after, sso.FeedMaxLimit, 0)
		if err != nil {
			return nil, err
		}
		return &changesStream{stream: stream, first: first, metrics: s.metrics, log: s.log, end: s.streamsEnd}, nil
	}
	if wait > 0 {
		s.metrics.FeedSubscribed(1)
		defer s.metrics.FeedSubscribed(-1)
	}
	changes, err := stream.Read(ctx, after, limit, wait)
	if err != nil {
		return nil, err
	}
	observeDelivery(s.metrics, changes)
	rep := &changesReply{Result: make([]wireFeedEvent, len(changes.Events)), Next: changes.Next}
	for i, e := range changes.Events {
		rep.Result[i] = newWireFeedEvent(e)
	}
	return rep, nil
}

// numberText returns key's value as text, whether the client sent a string or a JSON number.
func numberText(in *input, key string) string {
	switch v := in.Value(key).(type) {
	case nil:
		return ""
	case json.Number:
		return v.String()
	case string:
		return v
	}
	in.wrongType(key, "a number")
	return ""
}

// wantsEventStream says whether the request's Accept header names text/event-stream.
func wantsEventStream(h http.Header) bool {
	for _, value := range h.Values("Accept") {
		for _, part := range strings.Split(value, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// observeDelivery counts changes' events as delivered and, when the read waited for them, their
// lag from commit (expire events have no commit, and are not).
func observeDelivery(m *metrics.Metrics, changes *sso.Changes) {
	m.ObserveFeedDelivered(len(changes.Events))
	if !changes.Waited {
		return
	}
	now := time.Now()
	for _, e := range changes.Events {
		if e.Op != attrcache.FeedExpire {
			m.ObserveFeedLag(now.Sub(e.Time))
		}
	}
}

// changesStream is the change feed as Server-Sent Events: each event as `id: <cursor>` and
// `data: <the event's JSON>`, a comment line after feedKeepAlive of silence.
type changesStream struct {
	envelope
	stream  *sso.ChangeStream
	first   *sso.Changes
	metrics *metrics.Metrics
	log     *slog.Logger
	end     <-chan struct{} // closed: the server is shutting down
}

// serveEvents writes the stream until the client leaves, the server shuts down or a read fails;
// a failure once the stream has started is sent as an `event: error` with the error envelope,
// and ends it.
func (r *changesStream) serveEvents(c *gin.Context, ex *exchange) {
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	if r.end != nil {
		go func() {
			select {
			case <-r.end:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	r.metrics.FeedSubscribed(1)
	defer r.metrics.FeedSubscribed(-1)
	header := c.Writer.Header()
	header["Content-Type"] = []string{"text/event-stream; charset=utf-8"}
	header["X-Accel-Buffering"] = []string{"no"}
	ex.subStatus = []string{}
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	w := bufio.NewWriter(c.Writer)
	flush := func() error {
		if err := w.Flush(); err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
		return rc.Flush()
	}
	w.WriteString(": attrcache change feed\n\n")
	changes := r.first
	for {
		for _, e := range changes.Events {
			data, _ := json.Marshal(newWireFeedEvent(e)) // plain strings and numbers always encode
			w.WriteString("id: ")
			w.WriteString(sso.FormatCursor(e))
			w.WriteString("\ndata: ")
			w.Write(data)
			w.WriteString("\n\n")
		}
		if len(changes.Events) == 0 && changes.Waited {
			w.WriteString(": keep-alive\n\n")
		}
		if err := flush(); err != nil {
			return // the client went away
		}
		observeDelivery(r.metrics, changes)
		var err error
		changes, err = r.stream.Read(ctx, changes.Next, sso.FeedMaxLimit, feedKeepAlive)
		if err != nil {
			if ctx.Err() != nil {
				return // the client went away, or the server is shutting down
			}
			e := attrcache.AsError(err)
			r.log.Info("change feed stream ended", "cid", ex.cid, "sub_status", e.Code, "err", e.Error())
			data, _ := json.Marshal(errorBody{envelope: envelope{CID: ex.cid, Status: statusError, SubStatus: []string{e.Code}}, Message: e.Message})
			w.WriteString("event: error\ndata: ")
			w.Write(data)
			w.WriteString("\n\n")
			_ = flush()
			return
		}
	}
}
