package memlimit

import "net/http"

// Handler wraps next: while memrun asks the program to shed load it answers 503 Service
// Unavailable with Retry-After: 1 instead of serving, so a load balancer sends the work elsewhere
// while the program gives memory back.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Shedding() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "shedding load: memory pressure", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}
