package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// BasicAuth returns an Options.Authorize that admits one operator, user,
// by HTTP basic authentication with password (compared in constant
// time), and asks the browser for them otherwise. Serve the console over
// TLS when it is reachable by anything but loopback: basic
// authentication sends the password with every request.
func BasicAuth(user, password string) func(http.ResponseWriter, *http.Request) (string, bool) {
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	return func(w http.ResponseWriter, r *http.Request) (string, bool) {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		// Both compared, always, so that timing tells nothing of which failed.
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 || user == "" || password == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="mxrelay console", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return "", false
		}
		return user, true
	}
}
