package interpreter

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
)

// Sandbox is the directory tree a workflow's files must come from: load() (and any
// other way a script names a file) resolves only inside it. Its root is the main
// script's directory unless a module path says otherwise.
type Sandbox struct {
	root     string // as given, for messages
	realRoot string // absolute, symlinks resolved
}

// NewSandbox returns the sandbox for the script main: rooted at modulePath when it is
// not empty, else at main's directory. main itself must lie inside it.
func NewSandbox(main, modulePath string) (*Sandbox, error) {
	root := modulePath
	if root == "" {
		root = filepath.Dir(filepath.FromSlash(main))
	}
	real, err := realPath(root)
	if err != nil {
		return nil, fmt.Errorf("module path %s: %w", root, err)
	}
	s := &Sandbox{root: root, realRoot: real}
	if modulePath != "" {
		if err := s.check(filepath.FromSlash(main)); err != nil {
			return nil, fmt.Errorf("script %s is outside the module path %s: run a script inside it, or pass another --module-path", main, root)
		}
	}
	return s, nil
}

// Resolve returns the bundle path of module as named by a statement of the file from
// (a bundle path: slash-separated, relative to the working directory or absolute, as
// the main script was given). The module must be a relative path that stays inside
// the sandbox once symlinks are resolved; the error says why not (the caller adds the
// statement's position).
func (s *Sandbox) Resolve(from, module string) (string, error) {
	if module == "" {
		return "", errors.New("empty module path")
	}
	if path.IsAbs(module) || filepath.IsAbs(module) || filepath.VolumeName(module) != "" {
		return "", fmt.Errorf("%q is an absolute path: name files relative to the loading script, inside %s", module, s.root)
	}
	p := path.Join(path.Dir(from), module)
	if err := s.check(filepath.FromSlash(p)); err != nil {
		return "", fmt.Errorf("%q is outside the script's directory tree %s: %w", module, s.root, err)
	}
	return p, nil
}

// check says whether the file p (which may not exist yet: then its directory counts)
// lies inside the sandbox, symlinks resolved.
func (s *Sandbox) check(p string) error {
	real, err := realPath(p)
	if errors.Is(err, fs.ErrNotExist) {
		// A missing file is reported when it is read; its directory must still be inside.
		real, err = realPath(filepath.Dir(p))
		if err == nil {
			real = filepath.Join(real, filepath.Base(p))
		}
	}
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(s.realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return errors.New("keep loaded files in the script's directory or below (or widen the root with --module-path)")
	}
	return nil
}

// realPath is p made absolute with every symlink resolved.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}
