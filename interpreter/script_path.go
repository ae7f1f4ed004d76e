package interpreter

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"go.starlark.net/syntax"
)

// ResolveScriptPath resolves target, a script path written in the file from (a bundle
// path, '/'-separated), the way workflow() does: relative to from's directory, and only
// inside root, the main script's directory tree. An absolute path or one that climbs out
// of root with ".." is an error saying so. The check is lexical; CollectBundle also
// resolves symbolic links on disk (see checkInsideRoot).
func ResolveScriptPath(root, from, target string) (string, error) {
	if target == "" {
		return "", fmt.Errorf("empty script path")
	}
	if path.IsAbs(target) || filepath.IsAbs(target) || strings.Contains(target, `\`) {
		return "", fmt.Errorf("script path %q must be relative to the calling file (absolute paths and backslashes are not allowed)", target)
	}
	p := path.Join(path.Dir(from), target)
	if !insideRoot(root, p) {
		return "", fmt.Errorf("script path %q (from %s) leaves the main script's directory %s; workflow() only reaches files in that tree", target, from, rootName(root))
	}
	return p, nil
}

func insideRoot(root, p string) bool {
	root = path.Clean(root)
	if root == "." {
		return p != ".." && !strings.HasPrefix(p, "../") && !path.IsAbs(p)
	}
	return strings.HasPrefix(p, root+"/")
}

func rootName(root string) string {
	if root == "." || root == "" {
		return "(the working directory)"
	}
	return root
}

// checkInsideRoot resolves symbolic links of the file p on disk and checks that the
// file really lies inside root's tree.
func checkInsideRoot(root, p string) error {
	realRoot, err := filepath.EvalSymlinks(filepath.FromSlash(root))
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(filepath.FromSlash(p))
	if err != nil {
		return err
	}
	realRoot, _ = filepath.Abs(realRoot)
	real, _ = filepath.Abs(real)
	rel, err := filepath.Rel(realRoot, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s resolves (through a symbolic link) to %s, outside the main script's directory %s", p, real, realRoot)
	}
	return nil
}

// workflowCalls finds the workflow("literal.star", ...) calls of a file, so dispatch
// pins the scripts they name. A path computed at run time cannot be pinned: the call
// then fails (see Run.WorkflowEntry).
func workflowCalls(f *syntax.File) []loadRef {
	var refs []loadRef
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		if id, ok := call.Fn.(*syntax.Ident); !ok || id.Name != "workflow" {
			return true
		}
		if lit, ok := call.Args[0].(*syntax.Literal); ok && lit.Token == syntax.STRING {
			if s, ok := lit.Value.(string); ok {
				refs = append(refs, loadRef{module: s, pos: lit.TokenPos.String(), workflow: true})
			}
		}
		return true
	})
	return refs
}

// WorkflowEntry implements builtins.Host.
func (r *Run) WorkflowEntry(from, target, entry string) (string, error) {
	b := r.prog.Bundle
	file, err := ResolveScriptPath(path.Dir(b.Main), from, target)
	if err != nil {
		return "", err
	}
	if _, ok := b.Files[file]; !ok {
		return "", fmt.Errorf("%s is not pinned with this execution: dispatch pins the scripts of workflow() calls whose path is a string literal, so write the path literally", file)
	}
	name := file + ":" + entry
	if file == b.Main {
		name = entry
	}
	if _, err := r.prog.Entry(name); err != nil {
		return "", err
	}
	return name, nil
}
