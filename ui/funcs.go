package ui

import (
	"html/template"
	"path"
	"strconv"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"ms":  func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
	"label": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"path":  pathID,
	"base":  path.Base,
	"f1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"neg":   func(n int) int { return -n },
	"add":   func(a, b int) int { return a + b },
	"args":  func(v ...any) []any { return v },
}
