package telemetry

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Kinds of a payload's values, as walkObject reports them.
const (
	valueString = iota // s is the string, unescaped
	valueNumber        // raw is the number's JSON text
	valueBool          // s is "true" or "false"
	valueOther         // s names the JSON type: "null", "object" or "array" (whose values follow, unless ignored)
)

// visitFunc receives one value of a JSON object, named by its dotted path;
// it returns false to stop the walk.
type visitFunc func(name string, kind int, s string, raw []byte) bool

// walker flattens a JSON object: it visits the values in it, in order and
// duplicate names included, naming nested ones by their dotted path
// ("env.temp", and "accel.0" for an array's element when arrays are
// flattened).
type walker struct {
	maxDepth int    // the payload's object is depth 1
	arrays   bool   // flatten arrays (ArraysIndexed)
	skip     string // a top-level member not to visit (a batch's array), when skipping
	skipping bool
	decode   bool          // dec receives the values (a direct call)
	dec      objectDecoder // (by value: see decodeObject)
	visit    visitFunc     // else this does

	key     []byte // the dotted name of the current nested value
	deep    string // the name of the first value nested deeper than maxDepth
	stopped bool   // the visitor stopped the walk
}

// walkObject calls w.visit for each value of the JSON object b. b must be
// valid JSON (json.Valid) whose first byte other than white space is '{'. It
// builds no values: it allocates only the names and string values (escaped
// ones through encoding/json, so that they decode exactly as encoding/json
// decodes them). Values nested deeper than maxDepth are not visited: the
// first one's name is in w.deep.
func (w *walker) walkObject(b []byte) {
	w.key, w.deep, w.stopped = w.key[:0], "", false
	// The top level is the flat payload's path: names are strings at
	// once (one allocation each), scalars go straight to the visitor.
	i := skipSpace(b, 0) + 1 // past '{'
	for i < len(b) && !w.stopped {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := endOfString(b, i)
		name := unquote(b[i:end])
		i = skipSpace(b, skipSpace(b, end)+1) // past ':'
		if i >= len(b) {
			return
		}
		if w.skipping && name == w.skip {
			i = endOfValue(b, i)
			continue
		}
		if b[i] == '{' || b[i] == '[' {
			w.key = append(w.key[:0], name...)
			i = w.value(b, i, 1, name, true)
			continue
		}
		kind, s, raw, end := scalar(b, i)
		w.leaf(name, true, kind, s, raw)
		i = end
	}
}

// object walks the nested object at b[i] ('{') at depth, whose name is
// w.key, and returns the index after it.
func (w *walker) object(b []byte, i, depth int) int {
	prefix := len(w.key)
	i++ // past '{'
	for {
		var done bool
		if i, done = nextItem(b, i, '}'); done {
			return i
		}
		end := endOfString(b, i)
		quoted := b[i:end]
		i = skipSpace(b, skipSpace(b, end)+1) // past ':'
		if i >= len(b) {
			return i
		}
		w.key = appendUnquoted(append(w.key, '.'), quoted)
		i = w.value(b, i, depth, "", false)
		w.key = w.key[:prefix]
		if w.stopped {
			return len(b)
		}
	}
}

// array walks the array at b[i] ('[') at depth, whose elements are named
// w.key and their index.
func (w *walker) array(b []byte, i, depth int) int {
	prefix := len(w.key)
	i++ // past '['
	for n := 0; ; n++ {
		var done bool
		if i, done = nextItem(b, i, ']'); done {
			return i
		}
		w.key = strconv.AppendInt(append(w.key, '.'), int64(n), 10)
		i = w.value(b, i, depth, "", false)
		w.key = w.key[:prefix]
		if w.stopped {
			return len(b)
		}
	}
}

// value visits the value at b[i] in a composite at depth, named name when
// named, else w.key, and returns the index after it.
func (w *walker) value(b []byte, i, depth int, name string, named bool) int {
	if b[i] == '{' || b[i] == '[' {
		// A composite is visited too, as what it is: it replaces an
		// earlier value of its name, and may be the timestamp field.
		typ := "object"
		if b[i] == '[' {
			typ = "array"
		}
		w.leaf(name, named, valueOther, typ, nil)
		if w.stopped || b[i] == '[' && !w.arrays {
			return endOfComposite(b, i)
		}
		if depth >= w.maxDepth {
			if w.deep == "" {
				w.deep = string(w.key)
			}
			return endOfComposite(b, i)
		}
		if b[i] == '[' {
			return w.array(b, i, depth+1)
		}
		return w.object(b, i, depth+1)
	}
	kind, s, raw, end := scalar(b, i)
	w.leaf(name, named, kind, s, raw)
	return end
}

// scalar reads the string, number, boolean or null at b[i]: its kind, its
// string (unescaped) or JSON text, and the index after it.
func scalar(b []byte, i int) (kind int, s string, raw []byte, end int) {
	switch b[i] {
	case '"':
		end = endOfString(b, i)
		return valueString, unquote(b[i:end]), nil, end
	case 't':
		return valueBool, "true", nil, min(i+len("true"), len(b))
	case 'f':
		return valueBool, "false", nil, min(i+len("false"), len(b))
	case 'n':
		return valueOther, "null", nil, min(i+len("null"), len(b))
	}
	end = endOfNumber(b, i)
	return valueNumber, "", b[i:end], end
}

func (w *walker) leaf(name string, named bool, kind int, s string, raw []byte) {
	if !named {
		name = string(w.key)
	}
	var more bool
	if w.decode {
		more = w.dec.visit(name, kind, s, raw)
	} else {
		more = w.visit(name, kind, s, raw)
	}
	w.stopped = !more
}

// forEachElement calls fn with the bounds of each element of the JSON array
// at b[i] ('['), until fn returns false.
func forEachElement(b []byte, i int, fn func(start, end int) bool) {
	i++ // past '['
	for {
		var done bool
		if i, done = nextItem(b, i, ']'); done {
			return
		}
		end := endOfValue(b, i)
		if !fn(i, end) {
			return
		}
		i = end
	}
}

// member returns the bounds of the value of the last top-level member
// called name of the JSON object b, and false when it has none.
func member(b []byte, name string) (start, end int, ok bool) {
	i := skipSpace(b, 0) + 1 // past '{'
	for {
		var done bool
		if i, done = nextItem(b, i, '}'); done {
			break
		}
		kend := endOfString(b, i)
		key := b[i:kend]
		i = skipSpace(b, skipSpace(b, kend)+1) // past ':'
		if i >= len(b) {
			break
		}
		vend := endOfValue(b, i)
		if unquote(key) == name {
			start, end, ok = i, vend, true
		}
		i = vend
	}
	return start, end, ok
}

// nextItem skips the white space and comma before the next member or
// element of a composite that ends with end; done is true at its end, and i
// then the index after it.
func nextItem(b []byte, i int, end byte) (next int, done bool) {
	i = skipSpace(b, i)
	switch {
	case i >= len(b):
		return i, true
	case b[i] == end:
		return i + 1, true
	case b[i] == ',':
		i = skipSpace(b, i+1)
	}
	return i, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfValue returns the index after the JSON value that starts at b[i].
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		return endOfComposite(b, i)
	case 't', 'n':
		return min(i+4, len(b))
	case 'f':
		return min(i+5, len(b))
	}
	return endOfNumber(b, i)
}

// endOfString returns the index after the string that starts at b[i] ('"').
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		switch b[j] {
		case '\\':
			j += 2
		case '"':
			return j + 1
		default:
			j++
		}
	}
	return len(b)
}

// endOfComposite returns the index after the object or array at b[i].
func endOfComposite(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); {
		switch b[j] {
		case '"':
			j = endOfString(b, j)
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
		j++
	}
	return len(b)
}

func endOfNumber(b []byte, i int) int {
	for i < len(b) && strings.IndexByte("+-.0123456789eE", b[i]) >= 0 {
		i++
	}
	return i
}

// unquote decodes the JSON string literal q.
func unquote(q []byte) string {
	if len(q) < 2 {
		return ""
	}
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(q, &s) // q is valid JSON
			return s
		}
	}
	return string(inner)
}

// appendUnquoted appends the decoded JSON string literal q to dst.
func appendUnquoted(dst, q []byte) []byte {
	if len(q) < 2 {
		return dst
	}
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' {
			return append(dst, unquote(q)...)
		}
	}
	return append(dst, inner...)
}

// firstType names the JSON type of the valid JSON value b from its first
// byte.
func firstType(b []byte) string {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return "nothing"
	}
	switch b[i] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
