package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/stagehand-dev/stagehand/bot"
)

// pos is a 1-based line and column in the file.
type pos struct{ line, col int }

// walker turns the AST of one file into a bot.Config, collecting diagnostics
// as it goes.
type walker struct {
	file     string
	diags    bot.Diagnostics
	pos      map[string]pos      // dotted key path -> position of the key
	errPaths map[string]bool     // paths whose value is not the mapping it should be
	anchors  map[string]ast.Node // anchor name -> anchored value
}

func newWalker(filename string) *walker {
	return &walker{
		file:     filename,
		pos:      map[string]pos{},
		errPaths: map[string]bool{},
		anchors:  map[string]ast.Node{},
	}
}

// errorf records an error about the key or value at path, placed at p. The
// message is prefixed with the path when there is one.
func (w *walker) errorf(p pos, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	w.diags = append(w.diags, bot.Diagnostic{Path: w.file, Line: p.line, Column: p.col, Message: msg})
}

// parse runs goccy's parser and returns the body of the file's document.
// ok is false, after reporting why, when there is no document to walk (a
// syntax error or an empty file).
func (w *walker) parse(data []byte) (body ast.Node, ok bool) {
	// Duplicate keys are allowed here and reported by fields, which knows
	// the key path and can say more than goccy does.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		p, msg := pos{1, 1}, err.Error()
		var yerr yaml.Error
		if errors.As(err, &yerr) {
			msg = yerr.GetMessage()
			if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
				p = pos{tk.Position.Line, tk.Position.Column}
			}
		}
		w.errorf(p, "", "yaml syntax error: %s", msg)
		return nil, false
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		w.errorf(pos{1, 1}, "", "the file is empty; write at least version: 1, a build section, environments and pipelines")
		return nil, false
	}
	if len(docs) > 1 {
		w.errorf(nodePos(docs[1].Body), "", "the file holds %d YAML documents; keep one and remove the others (and their --- lines)", len(docs))
	}
	w.collectAnchors(docs[0].Body)
	return docs[0].Body, true
}

// collectAnchors records every anchor under n, so aliases can be followed
// wherever the walk meets them.
func (w *walker) collectAnchors(n ast.Node) {
	switch n := n.(type) {
	case *ast.AnchorNode:
		if n.Name != nil && n.Name.GetToken() != nil {
			w.anchors[n.Name.GetToken().Value] = n.Value
		}
		w.collectAnchors(n.Value)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			w.collectAnchors(mv)
		}
	case *ast.MappingValueNode:
		w.collectAnchors(n.Key)
		w.collectAnchors(n.Value)
	case *ast.MappingKeyNode:
		w.collectAnchors(n.Value)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			w.collectAnchors(v)
		}
	case *ast.TagNode:
		w.collectAnchors(n.Value)
	}
}

// resolve strips anchors and follows aliases. The schema's depth is fixed,
// so following an alias can never loop forever; the bound is only a guard
// against an alias of an alias of itself.
func (w *walker) resolve(n ast.Node) ast.Node {
	for range 16 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil || v.Value.GetToken() == nil {
				return n
			}
			target, ok := w.anchors[v.Value.GetToken().Value]
			if !ok {
				return n
			}
			n = target
		case *ast.MappingKeyNode:
			n = v.Value
		default:
			return n
		}
	}
	return n
}

// nodePos is where a node starts in the file.
func nodePos(n ast.Node) pos {
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return nodePos(m.Values[0].Key) // a block mapping's token is its first ':'
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		return nodePos(mv.Key)
	}
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return pos{1, 1}
	}
	p := n.GetToken().Position
	return pos{p.Line, p.Column}
}

// isNull reports whether n is null, written or implied by a missing value.
func isNull(n ast.Node) bool {
	if n == nil {
		return true
	}
	_, ok := n.(*ast.NullNode)
	return ok
}

// describe says what a value is, for "expected X, got Y" messages.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.StringNode:
		return fmt.Sprintf("the string %q", v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + n.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + v.Token.Value
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.TagNode:
		return "a value tagged " + v.Start.Value + " (tags are not supported; remove the tag)"
	case *ast.AliasNode:
		return "an alias"
	}
	return "a " + strings.ToLower(n.Type().String())
}

// entry is one key of a mapping.
type entry struct {
	key      string
	path     string   // dotted path of the key
	keyPos   pos      // position of the key
	valuePos pos      // position of the value, or of the key when it has none
	value    ast.Node // resolved value
}

// mapSpec says which keys a mapping may hold. what names a key in messages
// ("key", "pipeline kind"...). A nil allowed accepts any key.
type mapSpec struct {
	what    string
	allowed []string
}

// fields checks that n (at path, reported at p when it is not a mapping) is
// a mapping and returns its entries in file order. It reports unknown keys,
// duplicate keys and merge keys, and leaves them out. A null n is an empty
// mapping. ok is false when n is not a mapping.
func (w *walker) fields(path string, p pos, n ast.Node, spec mapSpec) (entries []entry, ok bool) {
	var values []*ast.MappingValueNode
	switch m := w.resolve(n).(type) {
	case nil, *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode: // goccy's form of some one-key mappings
		values = []*ast.MappingValueNode{m}
	default:
		w.errPaths[path] = true // Check need not add that it is empty
		if spec.allowed == nil {
			w.errorf(p, path, "expected a mapping of names to values, got %s", describe(m))
		} else {
			w.errorf(p, path, "expected a mapping with keys %s, got %s", strings.Join(spec.allowed, ", "), describe(m))
		}
		return nil, false
	}
	seen := map[string]pos{}
	for _, mv := range values {
		kp := nodePos(mv.Key)
		if _, merge := mv.Key.(*ast.MergeKeyNode); merge {
			w.errorf(kp, path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		key := keyText(w.resolve(mv.Key))
		kpath := joinPath(path, key)
		if first, dup := seen[key]; dup {
			if path == "pipelines" {
				w.errorf(kp, kpath, "duplicate pipeline kind: a program has at most one %s pipeline (the first is at line %d); remove one", key, first.line)
			} else {
				w.errorf(kp, kpath, "duplicate key (the first is at line %d); remove one", first.line)
			}
			continue
		}
		seen[key] = kp
		if spec.allowed != nil && !slices.Contains(spec.allowed, key) {
			w.errorf(kp, kpath, "unknown %s; allowed here: %s", spec.what, strings.Join(spec.allowed, ", "))
			continue
		}
		w.pos[kpath] = kp
		entries = append(entries, entry{key: key, path: kpath, keyPos: kp, valuePos: valuePos(kp, mv.Value), value: w.resolve(mv.Value)})
	}
	return entries, true
}

// valuePos is the position of value n of the key at keyPos; a missing value
// is reported at its key, since its implied position is past the colon.
func valuePos(keyPos pos, n ast.Node) pos {
	if n == nil {
		return keyPos
	}
	if tk := n.GetToken(); tk != nil && tk.Type == token.ImplicitNullType {
		return keyPos
	}
	return nodePos(n)
}

func keyText(n ast.Node) string {
	if s, ok := n.(*ast.StringNode); ok {
		return s.Value
	}
	if n == nil || n.GetToken() == nil {
		return ""
	}
	return n.GetToken().Value
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// require reports key as missing from entries, at the position of their
// parent key, with hint saying what to write.
func (w *walker) require(entries []entry, at pos, path, key, hint string) {
	for _, e := range entries {
		if e.key == key {
			return
		}
	}
	w.errorf(at, joinPath(path, key), "required; %s", hint)
}

// str returns e's value as a string. Only strings are accepted: a number or
// boolean where text is expected is reported, so that quoting is explicit.
func (w *walker) str(e entry, expected string) (string, bool) {
	switch v := e.value.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	w.errorf(e.valuePos, e.path, "expected %s, got %s", expected, describe(e.value))
	return "", false
}

// nonEmptyStr is str that also refuses an empty or blank string.
func (w *walker) nonEmptyStr(e entry, expected string) (string, bool) {
	s, ok := w.str(e, expected)
	if ok && strings.TrimSpace(s) == "" {
		w.errorf(e.valuePos, e.path, "expected %s, got an empty string", expected)
		return "", false
	}
	return s, ok
}

func (w *walker) boolean(e entry) (bool, bool) {
	if b, ok := e.value.(*ast.BoolNode); ok {
		return b.Value, true
	}
	w.errorf(e.valuePos, e.path, "expected true or false, got %s", describe(e.value))
	return false, false
}

// duration parses a Go duration such as 90s, 30m or 1h30m; it must be > 0.
func (w *walker) duration(e entry) (time.Duration, bool) {
	s, ok := e.value.(*ast.StringNode)
	if !ok {
		w.errorf(e.valuePos, e.path, "expected a duration such as 30m, got %s", describe(e.value))
		return 0, false
	}
	d, err := time.ParseDuration(s.Value)
	if err != nil {
		w.errorf(e.valuePos, e.path, "invalid duration %q: write a number with a unit, such as 90s, 30m or 1h30m", s.Value)
		return 0, false
	}
	if d <= 0 {
		w.errorf(e.valuePos, e.path, "the duration must be positive, got %s", s.Value)
		return 0, false
	}
	return d, true
}

// item is one element of a list.
type item struct {
	path  string // dotted path with the index, e.g. build.artifacts[0]
	pos   pos
	value ast.Node // resolved
}

// list checks that e's value is a list and returns its items. A null value
// is an empty list.
func (w *walker) list(e entry, expected string) ([]item, bool) {
	if isNull(e.value) {
		return nil, true
	}
	seq, ok := e.value.(*ast.SequenceNode)
	if !ok {
		w.errorf(e.valuePos, e.path, "expected a list of %s, got %s", expected, describe(e.value))
		return nil, false
	}
	out := make([]item, 0, len(seq.Values))
	for i, v := range seq.Values {
		p := nodePos(v)
		if i < len(seq.Entries) && seq.Entries[i].Start != nil && seq.Entries[i].Start.Position != nil {
			hyphen := seq.Entries[i].Start.Position // an empty item is reported at its -
			p = valuePos(pos{hyphen.Line, hyphen.Column}, v)
		}
		out = append(out, item{path: fmt.Sprintf("%s[%d]", e.path, i), pos: p, value: w.resolve(v)})
	}
	return out, true
}

// stringList returns a list of non-empty strings, each one checked by valid
// (which reports its own errors and returns false).
func (w *walker) stringList(e entry, expected string, valid func(it item, s string) bool) ([]string, bool) {
	items, ok := w.list(e, expected)
	if !ok {
		return nil, false
	}
	var out []string
	for _, it := range items {
		s, isStr := it.value.(*ast.StringNode)
		if !isStr || strings.TrimSpace(s.Value) == "" {
			got := describe(it.value)
			if isStr {
				got = "an empty string"
			}
			w.errorf(it.pos, it.path, "expected %s, got %s", expected, got)
			ok = false
			continue
		}
		if !valid(it, s.Value) {
			ok = false
			continue
		}
		out = append(out, s.Value)
	}
	return out, ok
}
