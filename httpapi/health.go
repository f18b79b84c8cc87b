package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/attrcache/attrcache"
)

// health answers ok while the process serves requests.
func (s *server) health(context.Context, *request) (reply, error) {
	return &envelope{}, nil
}

// readiness answers ok when Options.Ready does (the backends are reachable), else 503 E008004;
// why it is not ready is logged, not sent.
func (s *server) readiness(ctx context.Context, _ *request) (reply, error) {
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			return nil, attrcache.Unavailable(err)
		}
	}
	return &envelope{}, nil
}

// serveMetrics serves Options.MetricsHandler, or 404 when there is none.
func (s *server) serveMetrics(c *gin.Context, ex *exchange) {
	if s.metricsHandler == nil {
		s.writeError(c, ex, errNoSuchPath)
		return
	}
	s.metricsHandler.ServeHTTP(c.Writer, c.Request)
}
