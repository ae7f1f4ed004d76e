package builtins

import (
	"encoding/json"
	"unicode/utf8"

	"go.starlark.net/starlark"
)

// fastJSONDepth bounds the nesting the fast decoder follows; deeper documents take the
// encoding/json path, whose own limit and errors then apply.
const fastJSONDepth = 256

// fastJSON decodes the JSON that step values almost always are (activity results,
// arguments: plain strings, numbers, lists and objects) without encoding/json's
// decoder and its buffers. It gives up (ok false) at anything it does not handle
// itself: escapes in strings, invalid UTF-8, control characters, bad syntax, deep
// nesting. FromJSON then decodes the same bytes with encoding/json, so the values and
// the errors are that decoder's. What it does decode, it decodes to the same values
// (FuzzFromJSONFast checks).
type fastJSON struct {
	b []byte
	i int
}

func (s *fastJSON) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *fastJSON) value(depth int) (starlark.Value, bool) {
	if depth > fastJSONDepth {
		return nil, false
	}
	s.space()
	if s.i >= len(s.b) {
		return nil, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		str, ok := s.str()
		if !ok {
			return nil, false
		}
		return starlark.String(str), true
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == '[':
		s.i++
		var elems []starlark.Value
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return starlark.NewList(elems), true
		}
		for {
			v, ok := s.value(depth + 1)
			if !ok {
				return nil, false
			}
			elems = append(elems, v)
			if end, ok := s.next(']'); !ok {
				return nil, false
			} else if end {
				return starlark.NewList(elems), true
			}
		}
	case c == '{':
		s.i++
		d := starlark.NewDict(4)
		s.space()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return d, true
		}
		for {
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != '"' {
				return nil, false
			}
			k, ok := s.str()
			if !ok {
				return nil, false
			}
			s.space()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return nil, false
			}
			s.i++
			v, ok := s.value(depth + 1)
			if !ok {
				return nil, false
			}
			if d.SetKey(starlark.String(k), v) != nil {
				return nil, false
			}
			if end, ok := s.next('}'); !ok {
				return nil, false
			} else if end {
				return d, true
			}
		}
	case s.lit("true"):
		return starlark.True, true
	case s.lit("false"):
		return starlark.False, true
	case s.lit("null"):
		return starlark.None, true
	}
	return nil, false
}

// next consumes what follows an element of an array or object: a comma (end false)
// or its closing bracket (end true); ok is false for anything else.
func (s *fastJSON) next(closing byte) (end, ok bool) {
	s.space()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return false, true
	case closing:
		s.i++
		return true, true
	}
	return false, false
}

// lit consumes word if the input continues with it.
func (s *fastJSON) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// str reads a string without escapes or control characters, in valid UTF-8.
func (s *fastJSON) str() (string, bool) {
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			seg := s.b[start:j]
			if !ascii && !utf8.Valid(seg) {
				return "", false
			}
			s.i = j + 1
			return string(seg), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// number reads a number as JSON's grammar has it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *fastJSON) number() (starlark.Value, bool) {
	b, start, j := s.b, s.i, s.i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if b[j] == '-' {
		j++
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if !digits() {
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return nil, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return nil, false
		}
	}
	v, err := numberValue(json.Number(b[start:j]))
	if err != nil {
		return nil, false
	}
	s.i = j
	return v, true
}
