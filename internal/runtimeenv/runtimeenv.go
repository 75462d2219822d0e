// Package runtimeenv is where a job's, task's or actor's workers run:
// extra environment variables and a working directory shipped to every
// node as a package (Ray's runtime_env with env_vars and working_dir).
//
// A working directory travels as a zip package named by the SHA-256 of
// its bytes ("sha256:<hex>"). Package builds it deterministically (the
// same tree gives the same bytes, so the same name, on any machine with
// the same raygo build): entries sorted by path, every time stamp fixed,
// file modes kept. The head keeps packages in its control store's
// content-addressed binary store; each node fetches a package once and
// unpacks it once (Cache.Unpack) into
// <session>/runtime_resources/working_dir_files/<hex>/, where workers and
// job entrypoints then start.
//
//	pkg, err := runtimeenv.Package("./app", runtimeenv.PackOptions{Excludes: []string{"*.log", "data/"}})
//	// upload pkg.Data under pkg.Name, then:
//	env := runtimeenv.Env{WorkingDir: pkg.Name, EnvVars: map[string]string{"MODE": "prod"}}
//
// Limits (each explicit, with an error naming what was over):
//   - a package is at most PackOptions.MaxBytes packed (default
//     DefaultMaxPackageBytes, 100 MiB);
//   - unpacked, at most MaxUnpackedBytes and MaxEntries entries;
//   - at most MaxEnvVars environment variables of MaxEnvBytes in all.
//
// Symbolic links are followed when they name a regular file (its content
// is packed as a file) and refused otherwise (a link to a directory, or
// a dangling one: exclude it). Unpacking refuses entries that would land
// outside the directory (zip slip), links and devices.
package runtimeenv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/raygo/raygo/internal/pb"
)

// NamePrefix starts every package name.
const NamePrefix = "sha256:"

// Limits.
const (
	// DefaultMaxPackageBytes bounds a packed working directory unless
	// PackOptions.MaxBytes says otherwise (Ray's limit too).
	DefaultMaxPackageBytes = 100 << 20
	// MaxUnpackedBytes bounds what a package unpacks to (a zip bomb is
	// refused).
	MaxUnpackedBytes = 4 << 30
	// MaxEntries bounds the files and directories of a package.
	MaxEntries = 100_000
	// MaxEnvVars bounds a runtime environment's variables, MaxEnvBytes
	// their names and values together.
	MaxEnvVars  = 1000
	MaxEnvBytes = 256 << 10
)

// ErrInvalid is wrapped by every error about a malformed runtime
// environment or package name.
var ErrInvalid = errors.New("runtimeenv: invalid runtime environment")

// ErrTooLarge is wrapped by errors about a package over a limit.
var ErrTooLarge = errors.New("runtimeenv: package too large")

// Env is a runtime environment in Ray's JSON shape: the form of
// RAYGO_RUNTIME_ENV and of the job API's runtime_env.
type Env struct {
	EnvVars    map[string]string `json:"env_vars,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"` // a package name, "sha256:<hex>"
}

// IsZero reports whether e sets nothing.
func (e Env) IsZero() bool { return len(e.EnvVars) == 0 && e.WorkingDir == "" }

// Proto is e on the wire (nil when e sets nothing).
func (e Env) Proto() *pb.RuntimeEnv {
	if e.IsZero() {
		return nil
	}
	return &pb.RuntimeEnv{EnvVars: maps.Clone(e.EnvVars), WorkingDir: e.WorkingDir}
}

// FromProto is the Env of p (zero for nil).
func FromProto(p *pb.RuntimeEnv) Env {
	if p == nil {
		return Env{}
	}
	e := Env{WorkingDir: p.GetWorkingDir()}
	if len(p.GetEnvVars()) > 0 {
		e.EnvVars = maps.Clone(p.GetEnvVars())
	}
	return e
}

// JSON is e as RAYGO_RUNTIME_ENV carries it.
func (e Env) JSON() string {
	b, _ := json.Marshal(e) // maps of strings: cannot fail
	return string(b)
}

// ParseJSON reads and validates an Env written by JSON (or by a user).
func ParseJSON(s string) (Env, error) {
	var e Env
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Env{}, fmt.Errorf("%w: %v (want {\"env_vars\": {…}, \"working_dir\": \"sha256:…\"})", ErrInvalid, err)
	}
	return e, e.Validate()
}

// Validate checks e: variable names non-empty without '=' or NUL,
// values without NUL, within MaxEnvVars and MaxEnvBytes, and a working
// dir that is empty or a package name.
func (e Env) Validate() error {
	if len(e.EnvVars) > MaxEnvVars {
		return fmt.Errorf("%w: %d env_vars, more than the %d allowed", ErrInvalid, len(e.EnvVars), MaxEnvVars)
	}
	total := 0
	for _, k := range slices.Sorted(maps.Keys(e.EnvVars)) {
		v := e.EnvVars[k]
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: env_vars name %q: want a non-empty name without '=' or NUL", ErrInvalid, k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("%w: env_vars %s: the value contains a NUL byte", ErrInvalid, k)
		}
		total += len(k) + len(v)
	}
	if total > MaxEnvBytes {
		return fmt.Errorf("%w: env_vars of %d bytes, more than the %d allowed", ErrInvalid, total, MaxEnvBytes)
	}
	if e.WorkingDir != "" {
		if _, err := ParseName(e.WorkingDir); err != nil {
			return err
		}
	}
	return nil
}

// Merge is Ray's rule for a task's or actor's environment over its job's:
// the child's working dir if it sets one, else the parent's; the
// variables of both, the child's winning.
func Merge(parent, child Env) Env {
	out := Env{WorkingDir: parent.WorkingDir}
	if child.WorkingDir != "" {
		out.WorkingDir = child.WorkingDir
	}
	if len(parent.EnvVars)+len(child.EnvVars) > 0 {
		out.EnvVars = maps.Clone(parent.EnvVars)
		if out.EnvVars == nil {
			out.EnvVars = map[string]string{}
		}
		maps.Copy(out.EnvVars, child.EnvVars)
	}
	return out
}

// Key names p for pools of workers: "" for no environment, else a short
// hash of its content (equal environments, equal keys).
func Key(p *pb.RuntimeEnv) string {
	e := FromProto(p)
	if e.IsZero() {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(e.EnvVars)) {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(e.EnvVars[k]), e.EnvVars[k])
	}
	fmt.Fprintf(h, "|%s", e.WorkingDir)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ParseName checks a package name, "sha256:" and 64 lowercase hex
// digits, and returns the hex digest (the control store's binary key).
func ParseName(name string) (string, error) {
	h, ok := strings.CutPrefix(name, NamePrefix)
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: working_dir %q: want the name of an uploaded package, \"sha256:\" and 64 lowercase hex digits "+
			"(a local directory must be packaged and uploaded first: `raygo job submit --working-dir DIR` and ray.WithRuntimeEnv do it)", ErrInvalid, name)
	}
	return h, nil
}

// NameOf is the package name of a hex SHA-256 digest.
func NameOf(hexDigest string) string { return NamePrefix + hexDigest }
