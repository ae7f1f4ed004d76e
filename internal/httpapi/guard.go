package httpapi

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// HostGuard wraps h so that a page of another site cannot reach it through DNS
// rebinding (a name of the attacker's that resolves to this machine): a request is
// answered only when its Host is an IP literal, "localhost" or one of allowed, and a
// state-changing request (not GET, HEAD or OPTIONS) only when its Origin, or without
// one its Referer, names such a host too. Requests without either (curl, programs)
// pass the second check; browsers always send Origin on a cross-site POST.
func HostGuard(h http.Handler, allowed []string) http.Handler {
	ok := func(hostport string) bool {
		host := hostport
		if hh, _, err := net.SplitHostPort(hostport); err == nil {
			host = hh
		}
		host = strings.Trim(host, "[]")
		if host == "" {
			return false
		}
		if strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil {
			return true
		}
		for _, a := range allowed {
			if strings.EqualFold(host, a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ok(r.Host) {
			http.Error(w, "stent: unknown Host "+r.Host+": this server answers its address, localhost and --allowed-host names only", http.StatusMisdirectedRequest)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			from := r.Header.Get("Origin")
			if from == "" {
				from = r.Header.Get("Referer")
			}
			if from != "" {
				u, err := url.Parse(from)
				if err != nil || !ok(u.Host) {
					http.Error(w, "stent: cross-site request refused (Origin "+from+")", http.StatusForbidden)
					return
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}
