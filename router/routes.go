package router

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Checker answers whether a dependency works; /readyz asks each one.
type Checker interface {
	Ping(ctx context.Context) error
}

// Routes lists the server's own HTTP routes; the dashboard and the JSON
// API (worker.Dashboard.Register) add theirs to the same mux. With nil
// metrics, /metrics is served elsewhere (MetricsRoutes on the mux of
// --metrics-listen).
func Routes(mux *http.ServeMux, intake http.Handler, metrics *Metrics, ready map[string]Checker) {
	mux.Handle("POST /webhooks", intake)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", readyz(ready))
	if metrics != nil {
		MetricsRoutes(mux, metrics)
	}
}

// MetricsRoutes adds GET /metrics (Prometheus) to mux.
func MetricsRoutes(mux *http.ServeMux, metrics *Metrics) {
	mux.Handle("GET /metrics", metrics.Handler())
}

// readyz is 200 only when every checker answers within two seconds.
func readyz(checks map[string]Checker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, map[string]string{}
		for name, c := range checks {
			if err := c.Ping(ctx); err != nil {
				status = http.StatusServiceUnavailable
				body[name] = err.Error()
				continue
			}
			body[name] = "ok"
		}
		writeJSON(w, status, body)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
