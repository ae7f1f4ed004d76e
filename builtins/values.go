package builtins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
)

// ValueError reports a value that cannot cross a checkpoint.
type ValueError struct {
	Path string // e.g. "argument 2", "argument 1[3].name"
	Type string // the Starlark type that was found
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s has type %s, which cannot cross a checkpoint (allowed: None, bool, int, float, string, list, tuple, dict with string keys)", e.Path, e.Type)
}

// ToJSON encodes a Starlark value that may cross a checkpoint as JSON. Dicts keep their
// insertion order, so the encoding of a value is deterministic. path names the value in
// error messages ("argument 1").
func ToJSON(v starlark.Value, path string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := encodeValue(&buf, v, path, 0); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TupleToJSON encodes positional arguments as a JSON array, naming each in errors as
// "argument N" (1-based, offset by first).
func TupleToJSON(args starlark.Tuple, first int) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, a := range args {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeValue(&buf, a, fmt.Sprintf("argument %d", i+first), 0); err != nil {
			return nil, err
		}
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

const maxDepth = 100

func encodeValue(buf *bytes.Buffer, v starlark.Value, path string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s is nested more than %d levels deep (or contains itself)", path, maxDepth)
	}
	switch x := v.(type) {
	case starlark.NoneType:
		buf.WriteString("null")
	case starlark.Bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case starlark.Int:
		buf.WriteString(x.String())
	case starlark.Float:
		f := float64(x)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%s is the float %s, which JSON cannot represent", path, x.String())
		}
		buf.WriteString(formatFloat(f))
	case starlark.String:
		writeJSONString(buf, string(x))
	case *starlark.List:
		buf.WriteByte('[')
		for i := 0; i < x.Len(); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeValue(buf, x.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case starlark.Tuple:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encodeValue(buf, e, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case *starlark.Dict:
		buf.WriteByte('{')
		for i, item := range x.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return fmt.Errorf("%s has a key of type %s; dict keys crossing a checkpoint must be strings", path, item[0].Type())
			}
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(buf, string(k))
			buf.WriteByte(':')
			if err := encodeValue(buf, item[1], fmt.Sprintf("%s[%q]", path, string(k)), depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return &ValueError{Path: path, Type: v.Type()}
	}
	return nil
}

// formatFloat writes a float so that it decodes back as a float (1.0, not 1).
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func writeJSONString(buf *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c == '\n':
				buf.WriteString(`\n`)
			case c == '\r':
				buf.WriteString(`\r`)
			case c == '\t':
				buf.WriteString(`\t`)
			case c < 0x20 || c == 0x7f:
				buf.WriteString(`\u00`)
				buf.WriteByte(hex[c>>4])
				buf.WriteByte(hex[c&0xf])
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(`\ufffd`)
		} else {
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}

// FromJSON decodes JSON into a Starlark value: objects become dicts (keys in document
// order), arrays lists, integers ints (arbitrary precision) and other numbers floats.
// Empty input decodes as None.
func FromJSON(data []byte) (starlark.Value, error) {
	fast := fastJSON{b: data}
	if v, ok := fast.value(0); ok {
		if fast.space(); fast.i == len(data) {
			return v, nil
		}
	}
	return fromJSONDecoder(data)
}

// fromJSONDecoder is FromJSON with encoding/json's decoder: for what fastJSON leaves.
func fromJSONDecoder(data []byte) (starlark.Value, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return starlark.None, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("decoding JSON value: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("decoding JSON value: trailing data")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (starlark.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(t), nil
	case string:
		return starlark.String(t), nil
	case json.Number:
		return numberValue(t)
	case json.Delim:
		switch t {
		case '[':
			var elems []starlark.Value
			for dec.More() {
				e, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				elems = append(elems, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return starlark.NewList(elems), nil
		case '{':
			d := starlark.NewDict(4)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				e, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if err := d.SetKey(starlark.String(k), e); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

func numberValue(n json.Number) (starlark.Value, error) {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return starlark.MakeInt64(i), nil
		}
		b, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("bad JSON number %q", s)
		}
		return starlark.MakeBigInt(b), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("bad JSON number %q: %w", s, err)
	}
	return starlark.Float(f), nil
}

// ArgsFromJSON decodes a JSON array of arguments into a tuple.
func ArgsFromJSON(data []byte) (starlark.Tuple, error) {
	v, err := FromJSON(data)
	if err != nil {
		return nil, err
	}
	if v == starlark.None {
		return nil, nil
	}
	l, ok := v.(*starlark.List)
	if !ok {
		return nil, fmt.Errorf("arguments must be a JSON array, got %s", v.Type())
	}
	t := make(starlark.Tuple, l.Len())
	for i := range t {
		t[i] = l.Index(i)
	}
	return t, nil
}
