package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// The CSRF defence is a token in every form, derived from a random
// cookie (HttpOnly, SameSite=Strict, scoped to the console's path) and
// the operator's name with an HMAC: a page from another site can neither
// read the cookie nor compute the token, and a cookie planted by a
// sibling host does not match another operator's token. On top of it,
// net/http's CrossOriginProtection refuses cross-site POSTs by
// Sec-Fetch-Site and Origin. The console's Referrer-Policy is
// same-origin, so that browsers send a real Origin with its forms (under
// no-referrer Chromium sends "Origin: null").
const cookieName = "mxrelay_console"

// ensureCookie sets the CSRF cookie when the request has none.
func (k *server) ensureCookie(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil && validCookie(c.Value) {
		return
	}
	b := make([]byte, 18)
	rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: k.base, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	// The page being rendered needs the token now, before the browser
	// sends the cookie back.
	r.AddCookie(&http.Cookie{Name: cookieName, Value: v})
}

func validCookie(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 18
}

// token is the form token of the request's cookie and operator, or ""
// without a cookie.
func (k *server) token(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil || !validCookie(c.Value) {
		return ""
	}
	return k.tokenFor(c.Value, operatorOf(r.Context()))
}

func (k *server) tokenFor(cookie, op string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(cookie))
	m.Write([]byte{0})
	m.Write([]byte(op))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkToken reports whether the POSTed form carries the token of its
// cookie and operator.
func (k *server) checkToken(r *http.Request, op string) bool {
	c, err := r.Cookie(cookieName)
	if err != nil || !validCookie(c.Value) {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(k.tokenFor(c.Value, op)))
}

type operatorKey struct{}

func withOperator(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operatorKey{}, op)
}

func operatorOf(ctx context.Context) string {
	op, _ := ctx.Value(operatorKey{}).(string)
	return op
}
