package interpreter

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// withSuggestions adds "did you mean …?" to the "undefined: NAME" errors of a script
// that does not compile, from the predeclared names (builtins) and the names the file
// defines.
func withSuggestions(err error, src []byte, file string, predeclared starlark.StringDict) error {
	var list resolve.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	var names []string
	for k := range predeclared {
		names = append(names, k)
	}
	for k := range starlark.Universe {
		names = append(names, k)
	}
	if f, perr := FileOptions.Parse(file, src, 0); perr == nil {
		names = append(names, fileNames(f)...)
	}
	out := make(resolve.ErrorList, len(list))
	for i, e := range list {
		out[i] = e
		if name, ok := strings.CutPrefix(e.Msg, "undefined: "); ok {
			if s := closest(name, names); s != "" {
				out[i].Msg = fmt.Sprintf("%s (did you mean %s?)", e.Msg, s)
			}
		}
	}
	return out
}

// fileNames lists the top-level names a file defines (functions, assignments, loads)
// and the parameters of its functions.
func fileNames(f *syntax.File) []string {
	var names []string
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.DefStmt:
			names = append(names, n.Name.Name)
			for _, p := range n.Params {
				if id, ok := p.(*syntax.Ident); ok {
					names = append(names, id.Name)
				}
			}
		case *syntax.AssignStmt:
			if id, ok := n.LHS.(*syntax.Ident); ok {
				names = append(names, id.Name)
			}
		case *syntax.ForStmt:
			if id, ok := n.Vars.(*syntax.Ident); ok {
				names = append(names, id.Name)
			}
		case *syntax.LoadStmt:
			for _, id := range n.To {
				names = append(names, id.Name)
			}
		}
		return true
	})
	return names
}

// closest returns the candidate nearest to name by edit distance, when it is near
// enough to be a typo (at most a third of the name's length, and at least 1).
func closest(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestD := "", max(1, len(name)/3)+1
	for _, c := range candidates {
		if c == name || strings.HasPrefix(c, "_") {
			continue
		}
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// returnPositions maps each function of a file, by the position of its def, to the
// positions of its own return statements (not those of nested functions).
func returnPositions(file string, src []byte) map[string][]syntax.Position {
	f, err := FileOptions.Parse(file, src, 0)
	if err != nil {
		return nil
	}
	out := map[string][]syntax.Position{}
	var visitDef func(def *syntax.DefStmt)
	visitDef = func(def *syntax.DefStmt) {
		key := def.Def.String()
		out[key] = []syntax.Position{}
		for _, stmt := range def.Body {
			syntax.Walk(stmt, func(n syntax.Node) bool {
				switch n := n.(type) {
				case *syntax.DefStmt:
					visitDef(n)
					return false
				case *syntax.LambdaExpr:
					return false
				case *syntax.ReturnStmt:
					out[key] = append(out[key], n.Return)
				}
				return true
			})
		}
	}
	for _, stmt := range f.Stmts {
		if def, ok := stmt.(*syntax.DefStmt); ok {
			visitDef(def)
		}
	}
	return out
}

// returnPos is where fn returned a value that cannot cross a checkpoint: its return
// statement when it has one, else its def line (with the lines of its returns when it
// has several).
func (p *Program) returnPos(fn *starlark.Function) string {
	rets := p.returns[fn.Position().String()]
	switch len(rets) {
	case 0:
		return fn.Position().String()
	case 1:
		return rets[0].String()
	}
	lines := make([]string, len(rets))
	for i, r := range rets {
		lines[i] = fmt.Sprint(r.Line)
	}
	return fmt.Sprintf("%s (returned at line %s)", fn.Position(), strings.Join(lines, ", "))
}
