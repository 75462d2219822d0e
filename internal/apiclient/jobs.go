package apiclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// JobSubmitRequest is POST /api/jobs/'s body (Ray's JobSubmitRequest);
// RuntimeEnv's working_dir is the name of an uploaded package.
type JobSubmitRequest struct {
	Entrypoint          string             `json:"entrypoint"`
	SubmissionID        string             `json:"submission_id,omitempty"`
	RuntimeEnv          *JobRuntimeEnv     `json:"runtime_env,omitempty"`
	Metadata            map[string]string  `json:"metadata,omitempty"`
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus,omitempty"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus,omitempty"`
	EntrypointMemory    float64            `json:"entrypoint_memory,omitempty"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
}

// JobRuntimeEnv is a submission's runtime environment.
type JobRuntimeEnv struct {
	EnvVars    map[string]string `json:"env_vars,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
}

// JobDetails is a job submission (Ray's JobDetails).
type JobDetails struct {
	Type                string             `json:"type"`
	JobID               *string            `json:"job_id"`
	SubmissionID        string             `json:"submission_id"`
	Status              string             `json:"status"` // PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
	Entrypoint          string             `json:"entrypoint"`
	Message             string             `json:"message"`
	StartTime           int64              `json:"start_time"` // unix ms
	EndTime             *int64             `json:"end_time"`
	Metadata            map[string]string  `json:"metadata"`
	RuntimeEnv          JobRuntimeEnv      `json:"runtime_env"`
	DriverExitCode      *int32             `json:"driver_exit_code"`
	DriverNodeID        string             `json:"driver_node_id"`
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
	SubmittedBy         string             `json:"submitted_by,omitempty"`
	DriverPID           int32              `json:"driver_pid,omitempty"`
}

// Terminal reports whether the job has ended.
func (d JobDetails) Terminal() bool {
	return d.Status == "STOPPED" || d.Status == "SUCCEEDED" || d.Status == "FAILED"
}

// SubmitJob submits a job and returns its submission id.
func (c *Client) SubmitJob(ctx context.Context, req JobSubmitRequest) (string, error) {
	var out struct {
		SubmissionID string `json:"submission_id"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/jobs/", req, &out)
	return out.SubmissionID, err
}

// ListJobs lists the submissions, newest first.
func (c *Client) ListJobs(ctx context.Context) ([]JobDetails, error) {
	var out []JobDetails
	err := c.Do(ctx, http.MethodGet, "/api/jobs/", nil, &out)
	return out, err
}

// GetJob returns one submission.
func (c *Client) GetJob(ctx context.Context, id string) (JobDetails, error) {
	var out JobDetails
	err := c.Do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id), nil, &out)
	return out, err
}

// JobLogs returns a submission's entrypoint log (its last 16 MiB, with a
// note when it is longer).
func (c *Client) JobLogs(ctx context.Context, id string) (string, error) {
	var out struct {
		Logs string `json:"logs"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id)+"/logs", nil, &out)
	return out.Logs, err
}

// TailJobLogs copies a submission's log to w as it is written, until the
// job ends (or ctx does).
func (c *Client) TailJobLogs(ctx context.Context, id string, w io.Writer) error {
	resp, err := c.Request(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id)+"/logs/tail", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// StopJob stops a submission; false when it had ended.
func (c *Client) StopJob(ctx context.Context, id string) (bool, error) {
	var out struct {
		Stopped bool `json:"stopped"`
	}
	err := c.Do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/stop", nil, &out)
	return out.Stopped, err
}

// DeleteJob deletes an ended submission's record.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/api/jobs/"+url.PathEscape(id), nil, nil)
}

// HasPackage reports whether the head has the package name
// ("sha256:…").
func (c *Client) HasPackage(ctx context.Context, name string) (bool, error) {
	err := c.Do(ctx, http.MethodGet, "/api/packages/"+url.PathEscape(name), nil, nil)
	if IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// UploadPackage uploads a working-dir package under its name; wrap, when
// set, wraps the body's reader (a progress bar). The body is sent with its
// length, so the head reads it into one buffer of that size.
func (c *Client) UploadPackage(ctx context.Context, name string, data []byte, wrap func(io.Reader) io.Reader) error {
	var body io.Reader = bytes.NewReader(data)
	if wrap != nil {
		body = wrap(body)
	}
	path := "/api/packages/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+path, body)
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Type", "application/zip")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the raygo API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return decodeError(resp, http.MethodPut, path)
}
