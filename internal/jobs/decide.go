package jobs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// The deciding core: pure functions of a submission, the nodes and the
// time, table-tested in decide_test.go. The manager does the I/O.

// Status names, Ray's.
const (
	StatusPending   = "PENDING"
	StatusRunning   = "RUNNING"
	StatusStopped   = "STOPPED"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
)

// StatusName is a status's Ray name.
func StatusName(s pb.JobStatus) string {
	switch s {
	case pb.JobStatus_JOB_STATUS_PENDING:
		return StatusPending
	case pb.JobStatus_JOB_STATUS_RUNNING:
		return StatusRunning
	case pb.JobStatus_JOB_STATUS_STOPPED:
		return StatusStopped
	case pb.JobStatus_JOB_STATUS_SUCCEEDED:
		return StatusSucceeded
	case pb.JobStatus_JOB_STATUS_FAILED:
		return StatusFailed
	}
	return "UNKNOWN"
}

// Terminal reports whether a submission in status s has ended.
func Terminal(s pb.JobStatus) bool {
	return s == pb.JobStatus_JOB_STATUS_STOPPED || s == pb.JobStatus_JOB_STATUS_SUCCEEDED || s == pb.JobStatus_JOB_STATUS_FAILED
}

// NewSubmissionID makes an id as Ray does: "raysubmit_" and 16 random
// letters and digits.
func NewSubmissionID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [16]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = alphabet[int(c)%len(alphabet)]
	}
	return "raysubmit_" + string(out)
}

// placeKind is what placement decided for a pending submission.
type placeKind int

const (
	placeOn    placeKind = iota + 1 // start it on the node
	placeWait                       // no node has the resources free now: stay pending
	placeNever                      // no alive node's total holds them: fail
)

// placement picks the nodes to try a submission's entrypoint on, in
// order (the scheduler's Default policy, then the other nodes with room),
// or says to wait, or that no node can ever hold it. The message says why
// it waits or fails.
func placement(want resources.Set, nodes []scheduler.Node, tie uint64) (placeKind, []scheduler.Node, string) {
	d := scheduler.Pick(nodes, "", scheduler.Request{Resources: want}, scheduler.DefaultConfig(), tie)
	switch d.Kind {
	case scheduler.Infeasible:
		return placeNever, nil, fmt.Sprintf("no node of the cluster can ever hold the entrypoint's resources %s (the alive nodes' totals: %s)",
			want, totals(nodes))
	case scheduler.Queue:
		return placeWait, nil, fmt.Sprintf("no node has the entrypoint's resources %s free now: waiting", want)
	}
	var order []scheduler.Node
	for _, n := range nodes {
		if n.ID == d.Node {
			order = append(order, n)
		}
	}
	for _, n := range nodes {
		if n.ID != d.Node && n.Alive && want.Fits(n.Available) {
			order = append(order, n)
		}
	}
	return placeOn, order, ""
}

func totals(nodes []scheduler.Node) string {
	var parts []string
	for _, n := range nodes {
		if n.Alive {
			parts = append(parts, ids.ShortString(n.ID)+" "+n.Total.String())
		}
	}
	if len(parts) == 0 {
		return "no alive nodes"
	}
	return strings.Join(parts, "; ")
}

// exited applies an entrypoint's exit to s: SUCCEEDED on exit code 0,
// STOPPED when it was stopped, FAILED otherwise, with a message (Ray's
// wording where Ray has one). stoppedBy names who stopped it ("" when
// not known). It does nothing to a submission that has ended already.
func exited(s *pb.JobSubmission, req *pb.EntrypointExitedRequest, stoppedBy string, now time.Time) bool {
	if Terminal(s.GetStatus()) {
		return false
	}
	s.ExitCode = req.GetExitCode()
	s.EndUnixMs = now.UnixMilli()
	if len(req.GetNodeId()) > 0 {
		s.NodeId = req.GetNodeId()
	}
	switch {
	case req.GetStopped():
		s.Status = pb.JobStatus_JOB_STATUS_STOPPED
		s.Message = "Job was intentionally stopped."
		if stoppedBy != "" {
			s.Message = "stopped by " + stoppedBy
		}
	case req.GetExitCode() == 0:
		s.Status = pb.JobStatus_JOB_STATUS_SUCCEEDED
		s.Message = "Job finished successfully."
	default:
		s.Status = pb.JobStatus_JOB_STATUS_FAILED
		s.Message = fmt.Sprintf("Job entrypoint command failed: %s", req.GetMessage())
		if req.GetMessage() == "" {
			s.Message = fmt.Sprintf("Job entrypoint command failed with exit code %d", req.GetExitCode())
		}
	}
	return true
}

// prune returns the ids of the terminal submissions to drop so that at
// most keep remain: the ones that ended first.
func prune(subs []*pb.JobSubmission, keep int) []string {
	var ended []*pb.JobSubmission
	for _, s := range subs {
		if Terminal(s.GetStatus()) {
			ended = append(ended, s)
		}
	}
	if len(ended) <= keep {
		return nil
	}
	slices.SortFunc(ended, func(a, b *pb.JobSubmission) int {
		if c := a.GetEndUnixMs() - b.GetEndUnixMs(); c != 0 {
			return int(max(-1, min(1, c)))
		}
		return strings.Compare(a.GetSubmissionId(), b.GetSubmissionId())
	})
	out := make([]string, 0, len(ended)-keep)
	for _, s := range ended[:len(ended)-keep] {
		out = append(out, s.GetSubmissionId())
	}
	return out
}

// newestFirst orders submissions for listing: by submission time, newest
// first, then by id.
func newestFirst(a, b *pb.JobSubmission) int {
	if c := b.GetStartUnixMs() - a.GetStartUnixMs(); c != 0 {
		return int(max(-1, min(1, c)))
	}
	return strings.Compare(a.GetSubmissionId(), b.GetSubmissionId())
}

// shortHex is a node id for messages.
func shortHex(b []byte) string { return ids.ShortString(hex.EncodeToString(b)) }
