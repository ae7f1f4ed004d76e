package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// CheckAddr refuses to serve on an address other hosts can reach unless the view asks
// for credentials. Loopback addresses (127.0.0.0/8, ::1, localhost) are always allowed;
// an empty host (":8233") listens on every interface and is not loopback. A port out
// of range (or an unknown service name) is refused too.
func CheckAddr(addr string, opts Options) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want host:port, e.g. 127.0.0.1:8233: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("--addr %q: port %q: want a number from 0 to 65535, e.g. 127.0.0.1:8233", addr, port)
	}
	if IsLoopback(host) || opts.Username != "" || opts.Token != "" {
		return nil
	}
	where := host
	if where == "" {
		where = "every interface"
	}
	return fmt.Errorf("refusing to serve the web view on %s (%s) without credentials: other hosts could reach it. "+
		"Pass --auth user:pass or set STENT_UI_TOKEN, or listen on 127.0.0.1", addr, where)
}

// IsLoopback reports whether host names this machine only.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// authorized checks the request's credentials against Options. With neither a user nor
// a token configured every request is let in (the address check keeps that to loopback).
func (s *Server) authorized(r *http.Request) bool {
	o := s.opts
	if o.Username == "" && o.Token == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok && o.Token != "" {
		return equal(tok, o.Token)
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	if o.Username != "" && equal(user, o.Username) && equal(pass, o.Password) {
		return true
	}
	return o.Token != "" && equal(pass, o.Token)
}

// who names the authenticated caller of a request for the audit log: the Basic user
// name, "token" for a bearer token ("token as USER" when a browser sent it as the
// password of USER), "anonymous" when the view asks for no credentials.
func (s *Server) who(r *http.Request) string {
	if s.opts.Username == "" && s.opts.Token == "" {
		return "anonymous"
	}
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return "token"
	}
	user, pass, ok := r.BasicAuth()
	switch {
	case !ok:
		return "unknown"
	case s.opts.Username != "" && equal(user, s.opts.Username) && equal(pass, s.opts.Password):
		return user
	}
	return "token as " + user
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

const csrfCookie = "stent_ui_csrf"

// csrfToken returns the token forms of this browser carry, setting the browser's
// random CSRF cookie on first sight. The token is an HMAC of that cookie under a
// per-process secret: another site can neither read it (same-origin policy) nor make
// it from the cookie it cannot read either.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	var nonce string
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 32 {
		nonce = c.Value
	} else {
		var buf [16]byte
		_, _ = rand.Read(buf[:])
		nonce = hex.EncodeToString(buf[:])
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: nonce, Path: s.base, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	}
	return s.sign(nonce)
}

func (s *Server) sign(nonce string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(nonce))
	return hex.EncodeToString(m.Sum(nil))
}

var errCSRF = errors.New("this action carries no valid CSRF token: reload the page and try again")

// checkCSRF accepts a POST only with the token of this browser's cookie, and, when the
// browser names the page's origin, only from this host.
func (s *Server) checkCSRF(r *http.Request) error {
	if origin := r.Header.Get("Origin"); origin != "" && origin != "null" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("this action came from another site (%s): refused", origin)
		}
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return errCSRF
	}
	got := r.PostFormValue("csrf")
	if got == "" || !hmac.Equal([]byte(got), []byte(s.sign(c.Value))) {
		return errCSRF
	}
	return nil
}
