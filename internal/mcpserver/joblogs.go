package mcpserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/raylet"
)

// Limits of job_logs.
const (
	// DefaultLogPageBytes is how much of a log one job_logs call returns
	// when its input names no max_bytes.
	DefaultLogPageBytes = 64 << 10
	// MaxLogPageBytes is the largest max_bytes job_logs takes.
	MaxLogPageBytes = 1 << 20
	// MaxWaitSeconds is the longest wait_seconds job_logs takes.
	MaxWaitSeconds = 30
	// MaxTailLines is the largest tail_lines job_logs takes.
	MaxTailLines = 10000
	// logPoll is how often a waiting job_logs looks for new output.
	logPoll = 200 * time.Millisecond
)

// JobLogsInput is job_logs' input.
type JobLogsInput struct {
	SubmissionID string `json:"submission_id" jsonschema:"the job's submission id (list_jobs shows it)"`
	Offset       *int64 `json:"offset,omitempty" jsonschema:"byte offset to read from: 0 for the start, then next_offset of the previous call; leave out with tail_lines"`
	TailLines    int    `json:"tail_lines,omitempty" jsonschema:"without offset: return the log's last this many lines (at most 10000)"`
	WaitSeconds  int    `json:"wait_seconds,omitempty" jsonschema:"with offset: while the job runs and has nothing new past offset, wait up to this many seconds (0 to 30) for output"`
	MaxBytes     int    `json:"max_bytes,omitempty" jsonschema:"most bytes of text to return: default 65536, at most 1048576"`
}

// JobLogsOutput is job_logs' output.
type JobLogsOutput struct {
	Text       string `json:"text" jsonschema:"the log text read (may be empty)"`
	Offset     int64  `json:"offset" jsonschema:"byte offset of text in the log"`
	NextOffset int64  `json:"next_offset" jsonschema:"pass as offset to read on"`
	More       bool   `json:"more" jsonschema:"the log already has more past next_offset: call again at once"`
	Ended      bool   `json:"ended" jsonschema:"the job has ended and next_offset is the end of its log: nothing more will come"`
	Status     string `json:"status" jsonschema:"the job's status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED"`
	Message    string `json:"message,omitempty" jsonschema:"the job's status message"`
}

// logsPlan is a job_logs call's input, checked.
type logsPlan struct {
	tail     int   // > 0: tail mode
	offset   int64 // else: read from here
	wait     time.Duration
	maxBytes int
}

// planLogs checks job_logs' input. It is pure, for tests.
func planLogs(in JobLogsInput) (logsPlan, error) {
	p := logsPlan{maxBytes: DefaultLogPageBytes}
	if in.SubmissionID == "" {
		return p, fmt.Errorf("%w: submission_id is empty; list_jobs shows the jobs' submission_id", ErrBadInput)
	}
	if in.MaxBytes < 0 || in.MaxBytes > MaxLogPageBytes {
		return p, fmt.Errorf("%w: max_bytes %d: want 1 to %d", ErrBadInput, in.MaxBytes, MaxLogPageBytes)
	}
	if in.MaxBytes > 0 {
		p.maxBytes = in.MaxBytes
	}
	if in.WaitSeconds < 0 || in.WaitSeconds > MaxWaitSeconds {
		return p, fmt.Errorf("%w: wait_seconds %d: want 0 to %d; call again to wait longer", ErrBadInput, in.WaitSeconds, MaxWaitSeconds)
	}
	p.wait = time.Duration(in.WaitSeconds) * time.Second
	if in.TailLines < 0 || in.TailLines > MaxTailLines {
		return p, fmt.Errorf("%w: tail_lines %d: want 1 to %d", ErrBadInput, in.TailLines, MaxTailLines)
	}
	switch {
	case in.Offset != nil && in.TailLines > 0:
		return p, fmt.Errorf("%w: give offset or tail_lines, not both (tail_lines reads the end; then follow from its next_offset)", ErrBadInput)
	case in.Offset != nil && *in.Offset < 0:
		return p, fmt.Errorf("%w: offset %d: want 0 or more (next_offset of the previous call)", ErrBadInput, *in.Offset)
	case in.Offset != nil:
		p.offset = *in.Offset
	case in.TailLines > 0:
		p.tail = in.TailLines
	}
	return p, nil
}

// jobLogs serves job_logs: it polls the job's status and its log's size
// (cheap calls) until there is text past the offset, the job has ended,
// or the wait is over, and then reads the text.
func (b *backend) jobLogs(ctx context.Context, req mcp.Request, in JobLogsInput) (JobLogsOutput, error) {
	out := JobLogsOutput{}
	p, err := planLogs(in)
	if err != nil {
		return out, inputError(err)
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return out, err
	}
	id := in.SubmissionID
	deadline := time.Now().Add(p.wait)
	for {
		d, err := c.GetJob(ctx, id)
		if err != nil {
			return out, b.apiError(err, "list_jobs lists the jobs with their submission_id (drivers started without `raygo job submit` have no entrypoint log).")
		}
		out.Status, out.Message = d.Status, d.Message
		ended := d.Terminal()
		if d.DriverNodeID != "" {
			size, err := logSize(ctx, c, d.DriverNodeID, id)
			if err != nil {
				return out, b.apiError(err, "")
			}
			if p.tail > 0 {
				return readTail(ctx, c, id, size, p, ended, out)
			}
			if p.offset > size {
				return out, fmt.Errorf("offset %d is past the end of the log of %s (%d bytes); pass next_offset of the previous call, or 0", p.offset, id, size)
			}
			if size > p.offset || ended {
				return readPage(ctx, c, id, size, p, ended, out)
			}
		} else if ended { // it never ran: no log
			out.Ended, out.Offset, out.NextOffset = true, p.offset, p.offset
			return out, nil
		}
		if p.tail > 0 || !time.Now().Before(deadline) {
			out.Offset, out.NextOffset = p.offset, p.offset
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(min(logPoll, time.Until(deadline))):
		}
	}
}

// logSize is the size of the entrypoint log of submission id on node.
func logSize(ctx context.Context, c *apiclient.Client, node, id string) (int64, error) {
	name := raylet.JobLogName(id)
	list, err := c.ListLogs(ctx, node, name)
	if err != nil {
		return 0, err
	}
	for _, files := range list.Files {
		for _, f := range files {
			if f.Name == name {
				return f.Size, nil
			}
		}
	}
	if list.PartialFailureWarning != "" {
		return 0, fmt.Errorf("the log of %s is on node %s, which did not answer: %s", id, node, list.PartialFailureWarning)
	}
	return 0, nil // not written yet
}

// openLog opens the job's log from its start.
func openLog(ctx context.Context, c *apiclient.Client, id string) (io.ReadCloser, error) {
	l, err := c.GetLog(ctx, apiclient.LogQuery{SubmissionID: id})
	if err != nil {
		return nil, err
	}
	return l.Body, nil
}

// readPage reads [p.offset, min(size, p.offset+p.maxBytes)) of the log,
// ending at a whole UTF-8 character.
func readPage(ctx context.Context, c *apiclient.Client, id string, size int64, p logsPlan, ended bool, out JobLogsOutput) (JobLogsOutput, error) {
	out.Offset = p.offset
	n := min(size-p.offset, int64(p.maxBytes))
	buf := []byte{}
	if n > 0 {
		body, err := openLog(ctx, c, id)
		if err != nil {
			return out, fmt.Errorf("read the log of %s: %w", id, err)
		}
		defer body.Close()
		if _, err := io.CopyN(io.Discard, body, p.offset); err != nil {
			return out, fmt.Errorf("read the log of %s: skip to offset %d: %w", id, p.offset, err)
		}
		buf = make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return out, fmt.Errorf("read the log of %s at offset %d: %w", id, p.offset, err)
		}
		if p.offset+n < size {
			buf = buf[:wholeRunes(buf)]
		}
	}
	out.Text = strings.ToValidUTF8(string(buf), "\uFFFD")
	out.NextOffset = p.offset + int64(len(buf))
	out.More = out.NextOffset < size
	out.Ended = ended && !out.More
	return out, nil
}

// readTail reads the log up to size and keeps its last p.tail lines (at
// most p.maxBytes of them).
func readTail(ctx context.Context, c *apiclient.Client, id string, size int64, p logsPlan, ended bool, out JobLogsOutput) (JobLogsOutput, error) {
	out.NextOffset, out.Ended = size, ended
	if size == 0 {
		return out, nil
	}
	body, err := openLog(ctx, c, id)
	if err != nil {
		return out, fmt.Errorf("read the log of %s: %w", id, err)
	}
	defer body.Close()
	// Keep a window of the newest bytes: at most maxBytes are returned.
	window := make([]byte, 0, 2*p.maxBytes)
	chunk := make([]byte, 32<<10)
	var read int64
	for read < size {
		k, err := body.Read(chunk[:min(int64(len(chunk)), size-read)])
		window = append(window, chunk[:k]...)
		read += int64(k)
		if len(window) > p.maxBytes {
			window = slices.Delete(window, 0, len(window)-p.maxBytes)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read the log of %s: %w", id, err)
		}
	}
	text := lastLines(window, p.tail, read > int64(len(window)))
	out.Offset = read - int64(len(text))
	out.NextOffset = read
	out.Text = strings.ToValidUTF8(string(text), "\uFFFD")
	return out, nil
}

// lastLines returns the last n lines of b (a final line without a
// newline counts). cut says b is the end of something longer: its first
// line may be partial and is dropped unless it is all there is.
func lastLines(b []byte, n int, cut bool) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	start := end
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:start], '\n')
		if j < 0 {
			if cut {
				// The first line may be partial: start at a whole character.
				k := 0
				for k < len(b) && k < utf8.UTFMax && !utf8.RuneStart(b[k]) {
					k++
				}
				return b[k:]
			}
			return b
		}
		start = j
		if i == n-1 {
			break
		}
	}
	return b[start+1:]
}

// wholeRunes is how much of b ends at a whole UTF-8 character: b, less a
// character cut at its end.
func wholeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}
