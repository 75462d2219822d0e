package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// LabelOp is how a LabelMatch compares a node's label.
type LabelOp int

const (
	// In: the node has the label and its value is one of Values.
	In LabelOp = iota
	// NotIn: the node lacks the label or its value is none of Values.
	NotIn
	// Exists: the node has the label, whatever its value.
	Exists
	// DoesNotExist: the node lacks the label.
	DoesNotExist
)

func (op LabelOp) String() string {
	switch op {
	case In:
		return "in"
	case NotIn:
		return "notin"
	case Exists:
		return "exists"
	case DoesNotExist:
		return "!exists"
	}
	return fmt.Sprintf("LabelOp(%d)", int(op))
}

// LabelMatch is one condition on a node's labels, as in Ray's node label
// scheduling (and Kubernetes' node selector operators).
type LabelMatch struct {
	Key    string
	Op     LabelOp
	Values []string // In, NotIn: at least one; Exists, DoesNotExist: none
}

func (m LabelMatch) String() string {
	if m.Op == Exists || m.Op == DoesNotExist {
		return m.Op.String() + "(" + m.Key + ")"
	}
	return m.Key + " " + m.Op.String() + " (" + strings.Join(m.Values, ",") + ")"
}

// Matches says whether labels satisfy m.
func (m LabelMatch) Matches(labels map[string]string) bool {
	v, ok := labels[m.Key]
	switch m.Op {
	case In:
		return ok && slices.Contains(m.Values, v)
	case NotIn:
		return !ok || !slices.Contains(m.Values, v)
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	}
	return false
}

// MatchAll says whether labels satisfy every match in ms.
func MatchAll(labels map[string]string, ms []LabelMatch) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

// Limits on labels and selectors (documented in docs/scheduling.md).
const (
	MaxLabels         = 64  // labels on one node
	MaxMatches        = 64  // matches in one selector
	MaxMatchValues    = 64  // values in one In/NotIn match
	MaxLabelKeyName   = 63  // the name part of a key (after an optional "prefix/")
	MaxLabelKeyPrefix = 253 // a key's DNS-style prefix
	MaxLabelValue     = 63
)

// ReservedLabelPrefix starts the keys raygo sets itself; users may select
// on them but not set them.
const ReservedLabelPrefix = "raygo.io/"

// NodeIDLabel is the label every node has: its id.
const NodeIDLabel = ReservedLabelPrefix + "node-id"

// ValidateLabelKey checks a key: an optional prefix of at most 253
// characters and a slash, then a name of 1–63 characters, each part of
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit (Kubernetes' label key rule, which Ray follows).
func ValidateLabelKey(key string) error {
	name := key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		prefix := key[:i]
		name = key[i+1:]
		if prefix == "" || len(prefix) > MaxLabelKeyPrefix || !labelWord(prefix, true) {
			return fmt.Errorf("label key %q: the prefix before '/' must be 1-%d characters of letters, digits, '-', '.'", key, MaxLabelKeyPrefix)
		}
	}
	if name == "" || len(name) > MaxLabelKeyName || !labelWord(name, false) {
		return fmt.Errorf("label key %q: the name must be 1-%d characters of letters, digits, '-', '_', '.', starting and ending with a letter or digit", key, MaxLabelKeyName)
	}
	return nil
}

// ValidateLabelValue checks a value: empty, or up to 63 characters of
// letters, digits, '-', '_' and '.', starting and ending with a letter or
// digit.
func ValidateLabelValue(key, value string) error {
	if value == "" {
		return nil
	}
	if len(value) > MaxLabelValue || !labelWord(value, false) {
		return fmt.Errorf("label %s: value %q must be at most %d characters of letters, digits, '-', '_', '.', starting and ending with a letter or digit", key, value, MaxLabelValue)
	}
	return nil
}

// labelWord: alphanumeric at both ends, [-_.A-Za-z0-9] between ('/' allowed in
// DNS-style prefixes only as a separator, which the caller split on).
func labelWord(s string, prefix bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		switch {
		case alnum:
		case (i == 0 || i == len(s)-1):
			return false
		case c == '-' || c == '.' || (c == '_' && !prefix):
		default:
			return false
		}
	}
	return true
}

// ValidateLabels checks a node's labels (`raygo start --labels`): at most
// MaxLabels, valid keys and values, none under ReservedLabelPrefix.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%d labels exceed the limit of %d", len(labels), MaxLabels)
	}
	for k, v := range labels {
		if err := ValidateLabelKey(k); err != nil {
			return err
		}
		if strings.HasPrefix(k, ReservedLabelPrefix) {
			return fmt.Errorf("label key %q: the prefix %q is reserved for labels raygo sets", k, ReservedLabelPrefix)
		}
		if err := ValidateLabelValue(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ValidateMatches checks a selector: at most MaxMatches matches, valid keys
// and values, In/NotIn with 1–MaxMatchValues values and the others with
// none.
func ValidateMatches(ms []LabelMatch) error {
	if len(ms) > MaxMatches {
		return fmt.Errorf("label selector of %d matches exceeds the limit of %d", len(ms), MaxMatches)
	}
	for _, m := range ms {
		if err := ValidateLabelKey(m.Key); err != nil {
			return fmt.Errorf("label selector: %w", err)
		}
		switch m.Op {
		case In, NotIn:
			if len(m.Values) == 0 || len(m.Values) > MaxMatchValues {
				return fmt.Errorf("label selector: %s needs 1-%d values, has %d", m, MaxMatchValues, len(m.Values))
			}
			for _, v := range m.Values {
				if err := ValidateLabelValue(m.Key, v); err != nil {
					return fmt.Errorf("label selector: %w", err)
				}
			}
		case Exists, DoesNotExist:
			if len(m.Values) != 0 {
				return fmt.Errorf("label selector: %s takes no values", m)
			}
		default:
			return fmt.Errorf("label selector: key %q has unknown operator %d", m.Key, int(m.Op))
		}
	}
	return nil
}

// ParseLabels parses `k=v,k2=v2` (the form of `raygo start --labels`) and
// validates the result; an empty string is no labels.
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("label %q is not key=value", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label key %q is given twice", k)
		}
		out[k] = v
	}
	if err := ValidateLabels(out); err != nil {
		return nil, err
	}
	return out, nil
}

// String describes the request as an error message names it: its
// resources, then the strategy's node and the label selectors, if any.
func (r Request) String() string {
	var b strings.Builder
	b.WriteString(r.Resources.String())
	if r.Strategy == NodeAffinity {
		kind := "hard"
		if r.AffinitySoft {
			kind = "soft"
		}
		fmt.Fprintf(&b, " on node %s (%s affinity)", r.AffinityNode, kind)
	}
	if len(r.Labels) > 0 {
		b.WriteString(" with labels " + matchesString(r.Labels))
	}
	if len(r.PreferLabels) > 0 {
		b.WriteString(" preferring labels " + matchesString(r.PreferLabels))
	}
	return b.String()
}

func matchesString(ms []LabelMatch) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ", ")
}
