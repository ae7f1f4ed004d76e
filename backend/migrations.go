package backend

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Migration is one schema change of a store, from an embedded file NNN_name.up.sql.
type Migration struct {
	Version int    // NNN
	Name    string // name
	File    string // NNN_name: the file name without .up.sql
	SQL     string
}

// LoadMigrations reads the migration files dir/NNN_name.up.sql of fsys in version
// order; other files are ignored, and two files of one version are an error.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		file, ok := strings.CutSuffix(e.Name(), ".up.sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(file, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: want NNN_name.up.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, File: file, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", out[i-1].File, out[i].File, out[i].Version)
		}
	}
	return out, nil
}

// ScanVersions reads the applied migrations, rows of SELECT version FROM
// schema_migrations, as a set.
func ScanVersions(rows Rows) (map[int]bool, error) {
	vs, err := CollectRows(rows, func(s Scanner) (int, error) {
		var v int
		err := s.Scan(&v)
		return v, err
	})
	applied := make(map[int]bool, len(vs))
	for _, v := range vs {
		applied[v] = true
	}
	return applied, err
}

// MigrationLog records the migrations a Backend applied since it was opened (its own
// Migrate calls, the one at open included), for `stent migrate` to say what it did.
// A Backend embeds it; the zero value is empty.
type MigrationLog struct {
	mu      sync.Mutex
	applied []string // NNN_name, in the order applied
}

// Applied records migrations committed by this Backend.
func (l *MigrationLog) Applied(files ...string) {
	l.mu.Lock()
	l.applied = append(l.applied, files...)
	l.mu.Unlock()
}

// MigrationsApplied returns the migrations (NNN_name) this Backend applied since it
// was opened; none when the schema was already up to date.
func (l *MigrationLog) MigrationsApplied() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.applied...)
}

// MigrationReporter is a Backend that says which migrations it applied
// (MigrationLog).
type MigrationReporter interface {
	MigrationsApplied() []string
}
