package activities

import (
	"fmt"
	"strings"
)

// WithPassEnv passes the named environment variables to a command activity although
// the clean environment would drop them (STENT_DB, PGPASSWORD, …): a command that
// needs a database of its own says so explicitly.
func WithPassEnv(names ...string) Option {
	return func(o *Options) { o.PassEnv = append(o.PassEnv, names...) }
}

// CheckEnvName reports a name that cannot be an environment variable.
func CheckEnvName(name string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return fmt.Errorf("%q is not an environment variable name", name)
	}
	return nil
}

// secretEnv says whether a variable belongs to the configuration a command activity
// must not see: Stent's own (STENT_*: the database DSN, Redis URL, …) and libpq's
// (PG*: PGPASSWORD, PGHOST, …).
func secretEnv(name string) bool {
	return strings.HasPrefix(name, "STENT_") || strings.HasPrefix(name, "PG")
}

// cleanEnv is environ without secretEnv variables, except those named in pass.
func cleanEnv(environ, pass []string) []string {
	out := make([]string, 0, len(environ)+5)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if secretEnv(k) && !contains(pass, k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
