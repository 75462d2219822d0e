package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// Timeline writes the cluster's task timeline (Chrome Trace Event JSON,
// GET /api/v0/timeline) to w: the newest limit attempts (0: the server's
// default, 100,000) of one job (hex id) or of every job (""). It returns
// the bytes written.
func (c *Client) Timeline(ctx context.Context, jobID string, limit int, w io.Writer) (int64, error) {
	q := url.Values{}
	if jobID != "" {
		q.Set("job_id", jobID)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/v0/timeline"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.Request(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
