//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raygo/raygo/ray"
)

// whereAmI reports a worker's runtime environment: two variables and a
// file read by relative path from its working directory.
func whereAmI(ctx context.Context) (string, error) {
	b, _ := os.ReadFile("marker.txt")
	return fmt.Sprintf("job=%s task=%s file=%s", os.Getenv("RT_JOB"), os.Getenv("RT_TASK"), strings.TrimSpace(string(b))), nil
}

var WhereAmI = ray.Func0(whereAmI)

type EnvProbe struct{}

func NewEnvProbe(ctx context.Context) (*EnvProbe, error) { return &EnvProbe{}, nil }
func (p *EnvProbe) Where(ctx context.Context) (string, error) {
	return whereAmI(ctx)
}

var (
	EnvProbeActor = ray.Actor0(NewEnvProbe)
	EnvProbeWhere = ray.Method0(EnvProbeActor, (*EnvProbe).Where)
)

func markerDir(t *testing.T, content string) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "marker.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRuntimeEnv(t *testing.T) {
	jobDir, taskDir := markerDir(t, "job-dir"), markerDir(t, "task-dir")
	ctx := initCluster(t, ray.WithRuntimeEnv(ray.RuntimeEnv{EnvVars: map[string]string{"RT_JOB": "j"}, WorkingDir: jobDir}))

	got, err := WhereAmI.Remote(ctx).Get(ctx)
	if err != nil || got != "job=j task= file=job-dir" {
		t.Fatalf("the job's env: %q %v", got, err)
	}
	own := ray.WithRuntimeEnv(ray.RuntimeEnv{EnvVars: map[string]string{"RT_TASK": "t"}, WorkingDir: taskDir})
	got, err = WhereAmI.Options(own).Remote(ctx).Get(ctx)
	if err != nil || got != "job=j task=t file=task-dir" {
		t.Fatalf("a task's own env over the job's: %q %v", got, err)
	}
	a := EnvProbeActor.Options(own).Remote(ctx)
	got, err = EnvProbeWhere.Remote(ctx, a).Get(ctx)
	if err != nil || got != "job=j task=t file=task-dir" {
		t.Fatalf("an actor's own env: %q %v", got, err)
	}
	// The job's tasks still run in the job's env (their own workers).
	got, err = WhereAmI.Remote(ctx).Get(ctx)
	if err != nil || got != "job=j task= file=job-dir" {
		t.Fatalf("the job's env after: %q %v", got, err)
	}
	bad := ray.WithRuntimeEnv(ray.RuntimeEnv{WorkingDir: filepath.Join(t.TempDir(), "missing")})
	if _, err := WhereAmI.Options(bad).Remote(ctx).Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing working dir: %v", err)
	}
}
