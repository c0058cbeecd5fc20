package router

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type checker struct{ err error }

func (c checker) Ping(context.Context) error { return c.err }

// TestReadyz is ready only when every dependency answers.
func TestReadyz(t *testing.T) {
	for _, tt := range []struct {
		name   string
		checks map[string]Checker
		want   int
		body   string
	}{
		{"all answer", map[string]Checker{"state": checker{}, "broker": checker{}}, 200, `"broker":"ok"`},
		{"broker down", map[string]Checker{"state": checker{}, "broker": checker{errors.New("nats: no servers available")}}, 503, "no servers available"},
		{"state down", map[string]Checker{"state": checker{errors.New("database is locked")}, "broker": checker{}}, 503, "database is locked"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			Routes(mux, http.NotFoundHandler(), NewMetrics(nil), tt.checks)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("/readyz = %d %s, want %d with %q", rec.Code, rec.Body, tt.want, tt.body)
			}
		})
	}
}
