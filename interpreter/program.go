// Package interpreter runs one execution's Starlark script against its event history:
// deterministic replay of recorded steps, suspension at the first unrecorded one,
// determinism checks, step limits, and live (parked) runs that resume without replay.
//
// It knows nothing of SQL or workers: it consumes history events and produces the
// commands, logs and outcome of one workflow task. Storage is package backend's job and
// scheduling is the engine's.
package interpreter

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// FileOptions are the Starlark dialect options of workflow scripts: while loops, sets
// and recursion are allowed (a step limit bounds runaway code); top-level names cannot
// be reassigned.
var FileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, Recursion: true}

var universe = builtins.Universe()

// Hash returns the content hash under which a file is pinned.
func Hash(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}

// CollectBundle reads the script at file and, recursively, every file it load()s
// (paths relative to the loading file), checks their syntax and returns the bundle that
// pins them plus their sources by hash. Errors name file:line:col. Loaded files must lie
// in file's directory tree (see CollectBundleIn).
func CollectBundle(file string) (backend.Bundle, map[string][]byte, error) {
	return CollectBundleIn(file, "")
}

// CollectBundleIn is CollectBundle with the sandbox rooted at modulePath instead of the
// script's directory (when modulePath is not empty).
func CollectBundleIn(file, modulePath string) (backend.Bundle, map[string][]byte, error) {
	main := filepath.ToSlash(filepath.Clean(file))
	sandbox, err := NewSandbox(main, modulePath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return backend.Bundle{}, nil, fmt.Errorf("reading script: %w", err)
		}
		return backend.Bundle{}, nil, err
	}
	b := backend.Bundle{Main: main, Files: map[string]string{}}
	sources := map[string][]byte{}
	var visit func(p string, from string) error
	visit = func(p string, from string) error {
		if _, ok := b.Files[p]; ok {
			return nil
		}
		src, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			if from != "" {
				return fmt.Errorf("%s: load: %w", from, err)
			}
			return fmt.Errorf("reading script: %w", err)
		}
		h := Hash(src)
		b.Files[p] = h
		sources[h] = src
		loads, err := fileLoads(p, h, src)
		if err != nil {
			return err
		}
		for _, ld := range loads {
			kind := "load"
			if ld.workflow {
				kind = "workflow" // workflow("x.star") children are pinned with the bundle
			}
			target, err := sandbox.Resolve(p, ld.module)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", ld.pos, kind, err)
			}
			if err := visit(target, ld.pos); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(main, ""); err != nil {
		return backend.Bundle{}, nil, err
	}
	return b, sources, nil
}

// loadRef is a file a script refers to: a load() module, or (workflow set) the literal
// path of a workflow("x.star", ...) call.
type loadRef struct {
	module, pos string
	workflow    bool
}

// parsedLoads remembers the load() statements of files already parsed, by path and
// content hash, so dispatching the same script again does not parse it again.
var parsedLoads = struct {
	sync.Mutex
	m map[string][]loadRef // path + "\x00" + hash -> loads
}{m: map[string][]loadRef{}}

func fileLoads(path, hash string, src []byte) ([]loadRef, error) {
	key := path + "\x00" + hash
	parsedLoads.Lock()
	loads, ok := parsedLoads.m[key]
	parsedLoads.Unlock()
	if ok {
		return loads, nil
	}
	f, err := FileOptions.Parse(path, src, 0)
	if err != nil {
		return nil, err
	}
	for _, stmt := range f.Stmts {
		if ld, ok := stmt.(*syntax.LoadStmt); ok {
			mod, _ := ld.Module.Value.(string)
			loads = append(loads, loadRef{module: mod, pos: ld.Module.TokenPos.String()})
		}
	}
	loads = append(loads, workflowCalls(f)...)
	parsedLoads.Lock()
	if len(parsedLoads.m) >= 1024 {
		clear(parsedLoads.m)
	}
	parsedLoads.m[key] = loads
	parsedLoads.Unlock()
	return loads, nil
}

func resolveLoad(from, module string) string {
	if path.IsAbs(module) {
		return path.Clean(module)
	}
	return path.Join(path.Dir(from), module)
}

// Program is a compiled, initialised bundle. Its module globals are frozen, so one
// Program serves any number of concurrent runs.
type Program struct {
	Bundle  backend.Bundle
	modules map[string]starlark.StringDict
	// returns maps a function's def position to its return statements (see returnPos).
	returns map[string][]syntax.Position
}

// Compile compiles and initialises every file of the bundle. sources maps content hash
// to source. Top-level code runs once here; it cannot call recorded builtins.
func Compile(b backend.Bundle, sources map[string][]byte) (*Program, error) {
	return CompileWith(b, sources, nil)
}

// CompileWith is Compile with extra predeclared names beside the builtins (test hooks).
func CompileWith(b backend.Bundle, sources map[string][]byte, extra starlark.StringDict) (*Program, error) {
	predeclared := universe
	if len(extra) > 0 {
		predeclared = starlark.StringDict{}
		for k, v := range universe {
			predeclared[k] = v
		}
		for k, v := range extra {
			predeclared[k] = v
		}
	}
	isPredeclared := func(name string) bool { _, ok := predeclared[name]; return ok }
	p := &Program{Bundle: b, modules: map[string]starlark.StringDict{}, returns: map[string][]syntax.Position{}}
	loading := map[string]bool{}
	var load func(file string) (starlark.StringDict, error)
	load = func(file string) (starlark.StringDict, error) {
		if g, ok := p.modules[file]; ok {
			return g, nil
		}
		if loading[file] {
			return nil, fmt.Errorf("load cycle through %s", file)
		}
		h, ok := b.Files[file]
		if !ok {
			return nil, fmt.Errorf("%s is not part of the pinned bundle (files: %s)", file, strings.Join(sortedKeys(b.Files), ", "))
		}
		src, ok := sources[h]
		if !ok {
			return nil, fmt.Errorf("source of %s (hash %s) is missing", file, h[:12])
		}
		loading[file] = true
		defer delete(loading, file)
		_, prog, err := starlark.SourceProgramOptions(FileOptions, file, src, isPredeclared)
		if err != nil {
			return nil, withSuggestions(err, src, file, predeclared)
		}
		maps.Copy(p.returns, returnPositions(file, src))
		thread := &starlark.Thread{
			Name:  "init " + file,
			Print: func(*starlark.Thread, string) {},
			Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
				return load(resolveLoad(file, module))
			},
		}
		thread.SetMaxExecutionSteps(defaultStepLimit)
		g, err := prog.Init(thread, predeclared)
		if err != nil {
			return nil, scriptError(err)
		}
		g.Freeze()
		p.modules[file] = g
		return g, nil
	}
	for _, file := range sortedKeys(b.Files) {
		if _, err := load(file); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Entry returns the function an execution runs: "fn" names a function of the main
// file, "path:fn" one of a loaded file.
func (p *Program) Entry(entry string) (*starlark.Function, error) {
	file, name := p.Bundle.Main, entry
	if i := strings.LastIndex(entry, ":"); i >= 0 {
		file, name = entry[:i], entry[i+1:]
	}
	g, ok := p.modules[file]
	if !ok {
		return nil, fmt.Errorf("entry %q: file %s is not part of the script bundle", entry, file)
	}
	v, ok := g[name]
	if !ok {
		return nil, fmt.Errorf("entry function %q not found in %s (functions defined there: %s); define it or pick another with --entry", name, file, strings.Join(functionNames(g), ", "))
	}
	fn, ok := v.(*starlark.Function)
	if !ok {
		return nil, fmt.Errorf("entry %q in %s is a %s, not a function", name, file, v.Type())
	}
	return fn, nil
}

func functionNames(g starlark.StringDict) []string {
	var names []string
	for k, v := range g {
		if _, ok := v.(*starlark.Function); ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// EntryName returns the entry that designates fn, which must be a top-level function of
// one of the bundle's files.
func (p *Program) EntryName(fn *starlark.Function) (string, error) {
	file := fn.Position().Filename()
	g, ok := p.modules[file]
	if ok && g[fn.Name()] == fn {
		if file == p.Bundle.Main {
			return fn.Name(), nil
		}
		return file + ":" + fn.Name(), nil
	}
	return "", fmt.Errorf("function %s (defined at %s) is not a top-level function of the script; only top-level functions can run as child workflows", fn.Name(), fn.Position())
}

// CheckArity reports whether fn can be called with n positional arguments and nothing
// else, as an execution's entry function is: an error names the function, where it is
// defined and its parameters.
func CheckArity(fn *starlark.Function, n int) error {
	npos := fn.NumParams() - fn.NumKwonlyParams()
	if fn.HasVarargs() {
		npos--
	}
	if fn.HasKwargs() {
		npos--
	}
	var names, required []string
	for i := 0; i < npos; i++ {
		name, _ := fn.Param(i)
		names = append(names, name)
		if fn.ParamDefault(i) == nil {
			required = append(required, name)
		}
	}
	for i := npos; i < npos+fn.NumKwonlyParams(); i++ {
		if fn.ParamDefault(i) == nil {
			name, _ := fn.Param(i)
			return fmt.Errorf("%s: function %s has a keyword-only parameter %s without a default; an entry function gets positional arguments only (--args is a JSON array)", fn.Position(), fn.Name(), name)
		}
	}
	takes := fmt.Sprintf("takes %s", plural(len(names), "argument"))
	if len(required) < len(names) {
		takes = fmt.Sprintf("takes %d to %d arguments", len(required), len(names))
	}
	if fn.HasVarargs() {
		takes = fmt.Sprintf("takes at least %s", plural(len(required), "argument"))
	}
	if len(names) > 0 {
		takes += " (" + strings.Join(names, ", ") + ")"
	}
	switch {
	case n < len(required):
	case n > len(names) && !fn.HasVarargs():
	default:
		return nil
	}
	return fmt.Errorf("%s: function %s %s, but %s given: pass a JSON array with one element per parameter, e.g. --args '%s'",
		fn.Position(), fn.Name(), takes, plural(n, "argument"), exampleArgs(len(required)))
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// exampleArgs is a JSON array of n placeholder arguments.
func exampleArgs(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"arg%d"`, i+1)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
