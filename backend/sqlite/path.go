package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PathError says why a database file cannot be where its DSN puts it (a directory, a
// missing parent directory) and what to do about it. Open returns it before touching
// the file system, so a caller can tell bad input from a failing database.
type PathError struct {
	Path string // the file path of the DSN
	Msg  string // what is wrong and what to do
}

func (e *PathError) Error() string { return e.Msg }

// checkPath refuses a database path that SQLite could only answer with "unable to
// open database file".
func checkPath(path string) error {
	info, err := os.Stat(path)
	if err == nil {
		if info.IsDir() {
			return &PathError{Path: path, Msg: fmt.Sprintf("database path %s is a directory: name a file inside it (e.g. %s)", path, filepath.Join(path, "stent.db"))}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil // let SQLite report permissions and the like in its own words
	}
	dir := filepath.Dir(path)
	dinfo, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &PathError{Path: path, Msg: fmt.Sprintf("database path %s: directory %s does not exist: create it first (mkdir -p %s) or choose another path", path, dir, dir)}
	case err == nil && !dinfo.IsDir():
		return &PathError{Path: path, Msg: fmt.Sprintf("database path %s: %s is not a directory: choose another path", path, dir)}
	}
	return nil
}
