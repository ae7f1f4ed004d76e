package stenttest

import (
	"fmt"
	"strings"
)

// Diff returns a unified diff (3 lines of context) from want to got, or "" when they
// are equal. The names label the two sides.
func Diff(wantName, want, gotName, got string) string {
	if want == got {
		return ""
	}
	a, b := splitLines(want), splitLines(got)
	ops := diffLines(a, b)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", wantName, gotName)
	const context = 3
	// Walk the edit script, emitting hunks around changes.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-context, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		aStart, bStart := ops[start].aLine, ops[start].bLine
		var aCount, bCount int
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aCount++
			}
			if op.kind != '-' {
				bCount++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aCount), hunkRange(bStart, bCount))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(op.text)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

func hunkRange(start, count int) string {
	if count == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if count == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, count)
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += " (no newline at end)"
	}
	return lines
}

type diffOp struct {
	kind         byte // ' ', '-' or '+'
	text         string
	aLine, bLine int // 0-based positions in a and b before this op
}

// diffLines computes a shortest edit script by longest common subsequence. Golden
// files are small; past a few thousand lines it falls back to replacing everything.
func diffLines(a, b []string) []diffOp {
	// Trim the common prefix and suffix first: most diffs are small.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]diffOp, 0, len(a)+len(b))
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{kind: ' ', text: a[i], aLine: i, bLine: i})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(ma), len(mb)
	if n*m > 16_000_000 {
		for i, l := range ma {
			ops = append(ops, diffOp{kind: '-', text: l, aLine: pre + i, bLine: pre})
		}
		for j, l := range mb {
			ops = append(ops, diffOp{kind: '+', text: l, aLine: pre + n, bLine: pre + j})
		}
	} else {
		// lcs[i][j] is the LCS length of ma[i:] and mb[j:].
		lcs := make([][]int32, n+1)
		for i := range lcs {
			lcs[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if ma[i] == mb[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && ma[i] == mb[j]:
				ops = append(ops, diffOp{kind: ' ', text: ma[i], aLine: pre + i, bLine: pre + j})
				i++
				j++
			case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
				// Prefer deletions before insertions within a change: "-old" then "+new".
				if i < n && lcs[i+1][j] == lcs[i][j+1] {
					ops = append(ops, diffOp{kind: '-', text: ma[i], aLine: pre + i, bLine: pre + j})
					i++
					continue
				}
				ops = append(ops, diffOp{kind: '+', text: mb[j], aLine: pre + i, bLine: pre + j})
				j++
			default:
				ops = append(ops, diffOp{kind: '-', text: ma[i], aLine: pre + i, bLine: pre + j})
				i++
			}
		}
	}
	for k := 0; k < suf; k++ {
		ia, ib := len(a)-suf+k, len(b)-suf+k
		ops = append(ops, diffOp{kind: ' ', text: a[ia], aLine: ia, bLine: ib})
	}
	return ops
}
