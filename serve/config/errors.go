package config

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of problem a *FieldError reports; test with errors.Is on the
// *Error that Parse, Validate or ValidateResources returns, or on one of
// its FieldErrors.
var (
	// ErrSyntax: the input is not one well-formed YAML document of
	// reasonable size.
	ErrSyntax = errors.New("serve/config: bad YAML")
	// ErrUnknownField: a mapping key that the schema does not have.
	ErrUnknownField = errors.New("serve/config: unknown field")
	// ErrType: a value of the wrong YAML type (a list where a number
	// belongs, 2.5 for a whole number, ...).
	ErrType = errors.New("serve/config: wrong type")
	// ErrInvalidValue: a value out of range or of the wrong form.
	ErrInvalidValue = errors.New("serve/config: invalid value")
	// ErrDuplicate: two applications with one name or route prefix, two
	// deployments of one application with one name, a key given twice.
	ErrDuplicate = errors.New("serve/config: duplicate")
	// ErrConflict: fields that exclude each other set together
	// (num_replicas and autoscaling_config, command and import_path, ...).
	ErrConflict = errors.New("serve/config: conflicting fields")
	// ErrImpossibleResources: a replica needs more than any node has.
	ErrImpossibleResources = errors.New("serve/config: impossible resources")
)

// FieldError is one problem with a config, located by its path
// ("applications[0].deployments[1].max_ongoing_requests") and, when the
// config came from Parse, the line of the YAML that holds it.
type FieldError struct {
	Path string // empty for the document as a whole
	Line int    // 1-based; 0 when unknown (a config built in Go)
	Msg  string // what is wrong, for a person
	Hint string // how to fix it, when known ("did you mean num_replicas?")
	Kind error  // one of the Err* kinds above
}

// Error formats e as "path: msg (line N); hint".
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns the kind of e.
func (e *FieldError) Unwrap() error { return e.Kind }

// Error lists every problem found in a config, in document order: Parse,
// Validate and ValidateResources collect all they find rather than stop at
// the first. errors.Is(err, ErrDuplicate) reports whether any of them is
// of that kind; errors.As gives the *Error to range over Fields.
type Error struct {
	Fields []*FieldError
}

// Error formats the list, one problem a line after a count.
func (e *Error) Error() string {
	if len(e.Fields) == 1 {
		return "serve config: " + e.Fields[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "serve config: %d problems:", len(e.Fields))
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Unwrap returns every FieldError, so that errors.Is and errors.As look
// through each.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

// collector gathers FieldErrors, adding lines from a Parse'd config.
type collector struct {
	lines map[string]int
	errs  []*FieldError
}

func (c *collector) add(kind error, path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Line: lineOf(c.lines, path), Msg: fmt.Sprintf(format, args...), Kind: kind})
}

func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &Error{Fields: c.errs}
}

// lineOf finds the line of path, or of its nearest ancestor that has one.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}
