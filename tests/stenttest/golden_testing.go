package stenttest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// RunGolden runs one golden test file as part of a Go test (see RunGoldenFile).
func RunGolden(t *testing.T, path string, opts ...Option) {
	t.Helper()
	res, err := RunGoldenFile(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated {
		t.Logf("%s: expectations updated", path)
	}
	for _, f := range res.Failures {
		t.Errorf("%s: %s", path, f)
	}
}

// RunGoldenDir runs every *.txtar file of dir as a parallel subtest named after it.
func RunGoldenDir(t *testing.T, dir string, opts ...Option) {
	t.Helper()
	files, err := FindGoldenFiles([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files (*.txtar) in %s", dir)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.ToSlash(relOrSelf(dir, f)), ".txtar")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			RunGolden(t, f, opts...)
		})
	}
}

// FindGoldenFiles expands paths into golden test files: a directory stands for every
// *.txtar below it, a file for itself. With filter, only files whose path (relative to
// the directory named, without .txtar) matches are kept.
func FindGoldenFiles(paths []string, filter *regexp.Regexp) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(base, p string) {
		name := strings.TrimSuffix(filepath.ToSlash(relOrSelf(base, p)), ".txtar")
		if filter != nil && !filter.MatchString(name) {
			return
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			add(filepath.Dir(p), p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // .git and the like
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), ".txtar") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", p, err)
		}
		sort.Strings(found)
		for _, f := range found {
			add(p, f)
		}
	}
	return out, nil
}

func relOrSelf(base, p string) string {
	if r, err := filepath.Rel(base, p); err == nil {
		return r
	}
	return p
}
