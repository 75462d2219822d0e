package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// SubmitJobInput is submit_job's input.
type SubmitJobInput struct {
	Entrypoint   string            `json:"entrypoint" jsonschema:"the shell command to run on a node, e.g. \"./train --epochs 3\" or \"echo hello\""`
	WorkingDir   string            `json:"working_dir,omitempty" jsonschema:"absolute path of a directory on the machine this MCP server runs on: packed into a zip (as raygo job submit --working-dir does), uploaded, and the entrypoint and the job's workers run in it"`
	Excludes     []string          `json:"excludes,omitempty" jsonschema:"path.Match patterns to leave out of working_dir (relative paths or base names; \"dir/\" for directories)"`
	Env          map[string]string `json:"env,omitempty" jsonschema:"environment variables of the entrypoint and the job's workers"`
	Resources    *JobResources     `json:"resources,omitempty" jsonschema:"what the entrypoint holds while it runs (default: nothing)"`
	Metadata     map[string]string `json:"metadata,omitempty" jsonschema:"labels kept with the job"`
	SubmissionID string            `json:"submission_id,omitempty" jsonschema:"the job's id (default: a new one); 1 to 128 letters, digits, '-', '_' or '.'"`
}

// JobResources are a submission's entrypoint resources.
type JobResources struct {
	NumCPUs float64            `json:"num_cpus,omitempty" jsonschema:"CPUs (fractions below 1 allowed)"`
	NumGPUs float64            `json:"num_gpus,omitempty" jsonschema:"GPUs"`
	Custom  map[string]float64 `json:"custom,omitempty" jsonschema:"custom resources by name, e.g. {\"TPU\": 1}"`
}

// SubmitJobOutput is submit_job's output.
type SubmitJobOutput struct {
	SubmissionID string `json:"submission_id" jsonschema:"the job's id, for get_job, job_logs, stop_job"`
	Next         string `json:"next" jsonschema:"what to do next"`
}

// JobIDInput names a job to stop or delete.
type JobIDInput struct {
	SubmissionID string `json:"submission_id" jsonschema:"the job's submission id (list_jobs shows it)"`
	Confirm      bool   `json:"confirm,omitempty" jsonschema:"must be true: this is destructive"`
}

// StopJobOutput is stop_job's output.
type StopJobOutput struct {
	SubmissionID string `json:"submission_id"`
	Stopped      bool   `json:"stopped" jsonschema:"false when the job had already ended"`
}

// DeleteJobOutput is delete_job's output.
type DeleteJobOutput struct {
	SubmissionID string `json:"submission_id"`
	Deleted      bool   `json:"deleted"`
}

// KillActorInput is kill_actor's input.
type KillActorInput struct {
	ActorID   string `json:"actor_id" jsonschema:"the actor's id, in full or at least 6 of its first or last hex digits (list_actors shows them)"`
	NoRestart *bool  `json:"no_restart,omitempty" jsonschema:"true (the default, as ray.kill): the actor is dead for good; false: it restarts if it has restarts left"`
	Confirm   bool   `json:"confirm,omitempty" jsonschema:"must be true: this is destructive"`
}

// KillActorOutput is kill_actor's output.
type KillActorOutput struct {
	ActorID   string `json:"actor_id" jsonschema:"the actor's full id"`
	NoRestart bool   `json:"no_restart"`
	Killed    bool   `json:"killed"`
}

// needConfirm refuses a destructive call without confirm: true.
func needConfirm(confirm bool, tool, what string) error {
	if confirm {
		return nil
	}
	return fmt.Errorf("%s %s is destructive and was not done: call %s again with \"confirm\": true once the user agrees", tool, what, tool)
}

func (b *backend) addWriteTools(s *mcp.Server) {
	destructive := &mcp.ToolAnnotations{DestructiveHint: boolPtr(true), OpenWorldHint: boolPtr(false)}
	mcp.AddTool(s, &mcp.Tool{Name: "submit_job", Title: "Submit a job",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: boolPtr(false), OpenWorldHint: boolPtr(false)},
		Description: "Submit a job: a shell entrypoint run on a node with room for its resources, in an optional working directory " +
			"(uploaded from this MCP server's machine) with env vars. Needs a write token. Follow it with job_logs (offset 0, wait_seconds) and get_job."},
		func(ctx context.Context, req *mcp.CallToolRequest, in SubmitJobInput) (*mcp.CallToolResult, SubmitJobOutput, error) {
			out, err := b.submit(ctx, req, in)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "stop_job", Title: "Stop a job", Annotations: destructive,
		Description: "Stop a running or pending job (SIGTERM to its entrypoint's process group, SIGKILL after a grace period). Needs a write token and confirm: true."},
		func(ctx context.Context, req *mcp.CallToolRequest, in JobIDInput) (*mcp.CallToolResult, StopJobOutput, error) {
			out := StopJobOutput{SubmissionID: in.SubmissionID}
			if err := needConfirm(in.Confirm, "stop_job", "of "+in.SubmissionID); err != nil {
				return nil, out, err
			}
			c, err := b.client(ctx, req)
			if err != nil {
				return nil, out, err
			}
			out.Stopped, err = c.StopJob(ctx, in.SubmissionID)
			if err != nil {
				return nil, out, b.apiError(err, "list_jobs lists the jobs with their submission_id.")
			}
			return nil, out, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_job", Title: "Delete a job's record", Annotations: destructive,
		Description: "Delete an ended job's record (status and log reference); a running job must be stopped first. Needs a write token and confirm: true."},
		func(ctx context.Context, req *mcp.CallToolRequest, in JobIDInput) (*mcp.CallToolResult, DeleteJobOutput, error) {
			out := DeleteJobOutput{SubmissionID: in.SubmissionID}
			if err := needConfirm(in.Confirm, "delete_job", "of "+in.SubmissionID); err != nil {
				return nil, out, err
			}
			c, err := b.client(ctx, req)
			if err != nil {
				return nil, out, err
			}
			if err := c.DeleteJob(ctx, in.SubmissionID); err != nil {
				return nil, out, b.apiError(err, "list_jobs lists the jobs with their submission_id.")
			}
			out.Deleted = true
			return nil, out, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "kill_actor", Title: "Kill an actor", Annotations: destructive,
		Description: "Kill an actor's process. By default it is dead for good (no_restart true, as ray.kill); with no_restart false it restarts if it has restarts left. Needs a write token and confirm: true."},
		func(ctx context.Context, req *mcp.CallToolRequest, in KillActorInput) (*mcp.CallToolResult, KillActorOutput, error) {
			noRestart := in.NoRestart == nil || *in.NoRestart
			out := KillActorOutput{ActorID: in.ActorID, NoRestart: noRestart}
			if in.ActorID == "" {
				return nil, out, errors.New("actor_id is empty; list_actors lists the actors and their actor_id")
			}
			if err := needConfirm(in.Confirm, "kill_actor", "of actor "+in.ActorID); err != nil {
				return nil, out, err
			}
			c, err := b.client(ctx, req)
			if err != nil {
				return nil, out, err
			}
			r, err := c.KillActor(ctx, in.ActorID, noRestart)
			if err != nil {
				return nil, out, b.apiError(err, "")
			}
			return nil, KillActorOutput{ActorID: r.ActorID, NoRestart: r.NoRestart, Killed: r.Killed}, nil
		})
}

func (b *backend) submit(ctx context.Context, req mcp.Request, in SubmitJobInput) (SubmitJobOutput, error) {
	out := SubmitJobOutput{}
	if in.Entrypoint == "" {
		return out, errors.New("entrypoint is empty: give the shell command the job runs")
	}
	r := apiclient.JobSubmitRequest{Entrypoint: in.Entrypoint, SubmissionID: in.SubmissionID, Metadata: in.Metadata}
	if res := in.Resources; res != nil {
		if res.NumCPUs < 0 || res.NumGPUs < 0 {
			return out, errors.New("resources: num_cpus and num_gpus must be 0 or more")
		}
		r.EntrypointNumCPUs, r.EntrypointNumGPUs, r.EntrypointResources = res.NumCPUs, res.NumGPUs, res.Custom
	}
	if in.WorkingDir != "" && !filepath.IsAbs(in.WorkingDir) {
		return out, fmt.Errorf("working_dir %q: give an absolute path of a directory on the machine this MCP server runs on", in.WorkingDir)
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return out, err
	}
	if in.WorkingDir != "" || len(in.Env) > 0 {
		r.RuntimeEnv = &apiclient.JobRuntimeEnv{EnvVars: in.Env}
	}
	if in.WorkingDir != "" {
		pkg, err := runtimeenv.Package(in.WorkingDir, runtimeenv.PackOptions{Excludes: in.Excludes})
		if err != nil {
			return out, fmt.Errorf("working_dir: %v", err)
		}
		has, err := c.HasPackage(ctx, pkg.Name)
		if err != nil {
			return out, b.apiError(err, "")
		}
		if !has {
			if err := c.UploadPackage(ctx, pkg.Name, pkg.Data, nil); err != nil {
				return out, b.apiError(fmt.Errorf("upload working_dir %s: %w", in.WorkingDir, err), "")
			}
		}
		r.RuntimeEnv.WorkingDir = pkg.Name
	}
	id, err := c.SubmitJob(ctx, r)
	if err != nil {
		return out, b.apiError(err, "")
	}
	out.SubmissionID = id
	out.Next = fmt.Sprintf("follow its output with job_logs {\"submission_id\": %q, \"offset\": 0, \"wait_seconds\": 10}, again with next_offset until ended; get_job shows its status", id)
	return out, nil
}
