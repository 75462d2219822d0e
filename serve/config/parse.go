package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a Serve config file. It checks the document against the
// schema before decoding it, and reports every unknown field (with the
// closest known one, or the raygo field that replaces an old Ray name),
// every value of the wrong type (2.5 where a whole number belongs, a list
// where a string does) and every key given twice, each with its path and
// line, in one *Error. The result is the config as written: call Validate
// next, then Defaults.
//
// Anchors, aliases and merge keys (<<: *base) work as in any YAML.
// Limits: MaxConfigBytes of input, MaxYAMLNodes nodes with aliases
// expanded, one document.
func Parse(data []byte) (*Config, error) {
	col := &collector{}
	if len(data) > MaxConfigBytes {
		col.add(ErrSyntax, "", "the config is %d bytes, more than the %d allowed", len(data), MaxConfigBytes)
		return nil, col.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		col.add(ErrSyntax, "", "the config is empty")
		return nil, col.err()
	case err != nil:
		col.errs = append(col.errs, syntaxError(err))
		return nil, col.err()
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		col.errs = append(col.errs, &FieldError{Line: extra.Line, Msg: "more than one YAML document (---); a config is one document", Kind: ErrSyntax})
		return nil, col.err()
	case !errors.Is(err, io.EOF):
		col.errs = append(col.errs, syntaxError(err))
		return nil, col.err()
	}

	w := &walker{col: col, lines: map[string]int{}}
	w.walk(doc.Content[0], reflect.TypeFor[Config](), "")
	if err := col.err(); err != nil {
		return nil, err
	}

	// The walk found nothing wrong, so this decode (yaml's own, unknown
	// fields refused as well) should not fail; if it does, say what yaml
	// said.
	var c Config
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&c); err != nil {
		col.errs = append(col.errs, syntaxError(err))
		return nil, col.err()
	}
	c.lines = w.lines
	return &c, nil
}

// Marshal writes c as YAML (two-space indent), the form Parse reads:
// Parse(Marshal(c)) gives back c. Fields c leaves unset are left out, so
// a config as parsed stays as short as its file; after Defaults every
// setting is written out.
func (c *Config) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("serve config: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("serve config: marshal: %w", err)
	}
	return b.Bytes(), nil
}

// UserConfigJSON returns d's user_config as JSON ("null" when unset): the
// form that travels to replicas, and to a command deployment's processes
// in UserConfigEnv.
func (d *Deployment) UserConfigJSON() ([]byte, error) {
	b, err := json.Marshal(d.UserConfig)
	if err != nil {
		return nil, fmt.Errorf("serve config: deployment %q: user_config is not JSON-compatible: %w", d.Name, err)
	}
	return b, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns one of yaml's errors into a FieldError, with its line
// taken out of the message.
func syntaxError(err error) *FieldError {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Line: line, Msg: m[2], Kind: ErrSyntax}
	}
	return &FieldError{Msg: strings.TrimPrefix(msg, "yaml: "), Kind: ErrSyntax}
}

// walker checks a YAML node tree against a Go type, the way yaml's
// decoder will read it, noting each field's line by its path.
type walker struct {
	col      *collector
	lines    map[string]int
	visits   int
	overflow bool
	// inAlias holds the anchored nodes being walked through an alias, to
	// refuse an alias inside its own anchor (a cycle) at once.
	inAlias map[*yaml.Node]bool
}

// deref follows aliases from n. ok is false when the walk must stop
// there: too many nodes, or an alias to a node that contains it (leave
// must then not be called).
func (w *walker) deref(n *yaml.Node, path string) (target *yaml.Node, leave func(), ok bool) {
	var entered []*yaml.Node
	leave = func() {
		for _, e := range entered {
			delete(w.inAlias, e)
		}
	}
	for n.Kind == yaml.AliasNode {
		if !w.visit(n) {
			leave()
			return nil, nil, false
		}
		if w.inAlias[n.Alias] {
			w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("alias *%s is inside its own anchor", n.Value), Kind: ErrSyntax})
			leave()
			return nil, nil, false
		}
		if w.inAlias == nil {
			w.inAlias = map[*yaml.Node]bool{}
		}
		w.inAlias[n.Alias] = true
		entered = append(entered, n.Alias)
		n = n.Alias
	}
	return n, leave, true
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// visit counts a node against MaxYAMLNodes.
func (w *walker) visit(n *yaml.Node) bool {
	if w.overflow {
		return false
	}
	w.visits++
	if w.visits > MaxYAMLNodes {
		w.overflow = true
		w.col.errs = append(w.col.errs, &FieldError{Line: n.Line, Msg: fmt.Sprintf("the config has more than %d YAML nodes with aliases expanded", MaxYAMLNodes), Kind: ErrSyntax})
		return false
	}
	return true
}

func (w *walker) typeErr(n *yaml.Node, path, want string) {
	w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("want %s, got %s", want, describe(n)), Kind: ErrType})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	n, leave, ok := w.deref(n, path)
	if !ok {
		return
	}
	defer leave()
	if !w.visit(n) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // yaml leaves the zero value: unset
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: n.Line, Msg: err.Error(), Kind: ErrType})
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.walk(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.typeErr(n, path, "a mapping")
			return
		}
		w.walkStruct(n, t, path, map[string]int{})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.typeErr(n, path, "a list")
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.typeErr(n, path, "a mapping")
			return
		}
		if t.Elem().Kind() == reflect.Interface {
			w.walkAny(n, path) // any YAML; Validate checks it is JSON-compatible
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				w.walk(v, t, path) // <<: *base merges a mapping of the same kind
				continue
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
				w.typeErr(k, path, "a name as the key")
				continue
			}
			p := fmt.Sprintf("%s[%q]", path, k.Value)
			if first, dup := seen[k.Value]; dup {
				w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: k.Line, Msg: fmt.Sprintf("key %q given twice (first on line %d)", k.Value, first), Kind: ErrDuplicate})
				continue
			}
			seen[k.Value] = k.Line
			w.lines[p] = k.Line
			w.walk(v, t.Elem(), p)
		}
	case reflect.Interface:
		w.walkAny(n, path)
	default:
		w.walkScalar(n, t, path)
	}
}

// walkStruct checks the keys of mapping n against the yaml fields of t.
// seen holds the keys given so far (a merge key's mapping is walked into
// the same seen, but may be overridden by keys of n).
func (w *walker) walkStruct(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	fields := yamlFields(t)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.typeErr(k, path, "a field name as the key")
			continue
		}
		f, ok := fields[k.Value]
		if !ok && strings.HasPrefix(k.Value, extensionPrefix) && hasInlineMap(t) {
			w.walkAny(v, join(path, k.Value))
			continue
		}
		if !ok {
			fe := unknownField(t, path, k, fields)
			if v.Anchor != "" && hasInlineMap(t) && fe.Hint == "" {
				fe.Hint = fmt.Sprintf("to keep YAML anchors here, name the key %s%s", extensionPrefix, k.Value)
			}
			w.col.errs = append(w.col.errs, fe)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.col.errs = append(w.col.errs, &FieldError{Path: join(path, k.Value), Line: k.Line, Msg: fmt.Sprintf("given twice (first on line %d)", first), Kind: ErrDuplicate})
			continue
		}
		seen[k.Value] = k.Line
		p := join(path, k.Value)
		w.lines[p] = k.Line
		if k.Value == "route_prefix" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			w.col.errs = append(w.col.errs, &FieldError{Path: p, Line: k.Line, Msg: "null (an application without an HTTP route) is not supported by raygo yet", Hint: `leave route_prefix out for "/"`, Kind: ErrInvalidValue})
			continue
		}
		w.walk(v, f, p)
	}
	// Keys of n win over merged ones, so merged mappings are checked
	// after n's own keys are in seen, and their repeats are not errors.
	for _, m := range merges {
		w.walkMerge(m, t, path, seen)
	}
}

// walkMerge checks the value of a merge key (<<) in a mapping read as t:
// a mapping, or a list of them, whose keys not already in seen count as
// the mapping's own.
func (w *walker) walkMerge(m *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	m, leave, ok := w.deref(m, path)
	if !ok {
		return
	}
	defer leave()
	maps := []*yaml.Node{m}
	if m.Kind == yaml.SequenceNode {
		maps = m.Content
	}
	for _, mm := range maps {
		mm, leaveItem, ok := w.deref(mm, path)
		if !ok {
			return
		}
		if mm.Kind != yaml.MappingNode {
			w.typeErr(mm, path, "a mapping to merge (<<)")
			leaveItem()
			continue
		}
		if !w.visit(mm) {
			leaveItem()
			return
		}
		sub := &yaml.Node{Kind: yaml.MappingNode, Line: mm.Line}
		for i := 0; i+1 < len(mm.Content); i += 2 {
			if _, overridden := seen[mm.Content[i].Value]; !overridden {
				sub.Content = append(sub.Content, mm.Content[i], mm.Content[i+1])
			}
		}
		w.walkStruct(sub, t, path, map[string]int{})
		leaveItem()
	}
}

// walkAny counts the nodes of a value of any shape (user_config, args).
func (w *walker) walkAny(n *yaml.Node, path string) {
	n, leave, ok := w.deref(n, path)
	if !ok {
		return
	}
	defer leave()
	if !w.visit(n) {
		return
	}
	for _, c := range n.Content {
		w.walkAny(c, path)
	}
}

// walkScalar checks a scalar against a string, bool, integer or float
// type. yaml's decoder would truncate 2.5 to 2 for an integer; here it is
// an error.
func (w *walker) walkScalar(n *yaml.Node, t reflect.Type, path string) {
	want := map[reflect.Kind]string{
		reflect.String: "a string", reflect.Bool: "true or false",
		reflect.Float32: "a number", reflect.Float64: "a number",
	}[t.Kind()]
	isInt := false
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, isInt = "a whole number", true
	}
	if want == "" {
		w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("cannot check a value of Go type %s", t), Kind: ErrType})
		return
	}
	if n.Kind != yaml.ScalarNode {
		w.typeErr(n, path, want)
		return
	}
	tag := n.ShortTag()
	switch {
	case isInt && tag == "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			w.typeErr(n, path, want)
			return
		}
	case isInt && tag != "!!int", want == "a number" && tag != "!!int" && tag != "!!float", t.Kind() == reflect.Bool && tag != "!!bool":
		w.typeErr(n, path, want)
		return
	case t.Kind() == reflect.String && tag != "!!str" && tag != "!!int" && tag != "!!float" && tag != "!!bool":
		w.typeErr(n, path, want) // a timestamp or binary
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.col.errs = append(w.col.errs, &FieldError{Path: path, Line: n.Line, Msg: fmt.Sprintf("want %s, got %s (out of range?)", want, describe(n)), Kind: ErrType})
	}
}

// describe names what a node holds, for "want X, got Y".
func describe(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return strconv.Quote(n.Value)
		case "!!null":
			return "null"
		}
		return n.Value
	}
	return "a YAML document"
}

// extensionPrefix starts the keys that Config.Extensions holds.
const extensionPrefix = "x-"

// hasInlineMap reports whether t has an inline map field (Extensions).
func hasInlineMap(t reflect.Type) bool {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && f.Type.Kind() == reflect.Map && strings.Contains(f.Tag.Get("yaml"), ",inline") {
			return true
		}
	}
	return false
}

// yamlFields maps the yaml names of t's fields to their types; an inline
// field is not one.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || strings.Contains(","+opts+",", ",inline,") {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
