package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/resources"
)

// Bounds of what a prompt gathers.
const (
	// promptLogLines is how many of a job's last log lines
	// diagnose_failing_job includes.
	promptLogLines = 100
	// promptRows bounds the failed tasks and dead actors it includes.
	promptRows = 10
)

func (b *backend) addPrompts(s *mcp.Server) {
	s.AddPrompt(&mcp.Prompt{Name: "diagnose_failing_job", Title: "Diagnose a failing job",
		Description: "Gather a job's status, the end of its log, its failed tasks and dead actors, and the cluster's demands, and ask why it fails.",
		Arguments:   []*mcp.PromptArgument{{Name: "job_id", Description: "the job's submission id or job id (list_jobs shows them)", Required: true}}},
		b.diagnoseJob)
	s.AddPrompt(&mcp.Prompt{Name: "why_task_pending", Title: "Why is a task pending?",
		Description: "Gather a task's state and resource request, and the nodes' free and total resources, and ask why it does not run.",
		Arguments:   []*mcp.PromptArgument{{Name: "task_id", Description: "the task's id (list_tasks shows them)", Required: true}}},
		b.whyPending)
}

// section is one block of facts in a prompt.
type section struct {
	title string
	body  string
}

// promptText joins a question and its facts.
func promptText(question string, facts []section) string {
	var sb strings.Builder
	sb.WriteString(question)
	for _, f := range facts {
		fmt.Fprintf(&sb, "\n\n## %s\n%s", f.title, strings.TrimRight(f.body, "\n"))
	}
	return sb.String()
}

// jsonText is v as indented JSON.
func jsonText(v any) string {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}

func userPrompt(desc, text string) *mcp.GetPromptResult {
	return &mcp.GetPromptResult{Description: desc, Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: text}}}}
}

func (b *backend) diagnoseJob(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	id := req.Params.Arguments["job_id"]
	if id == "" {
		return nil, fmt.Errorf("diagnose_failing_job needs job_id: a submission id or job id (list_jobs shows them)")
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return nil, err
	}
	job, err := b.get(ctx, req, kindOf("jobs"), id)
	if err != nil {
		return nil, err
	}
	facts := []section{{"Job", jsonText(job)}}
	if sub, _ := job["submission_id"].(string); sub != "" {
		logs, err := b.jobLogs(ctx, req, JobLogsInput{SubmissionID: sub, TailLines: promptLogLines})
		switch {
		case err != nil:
			facts = append(facts, section{"Log", "(could not be read: " + err.Error() + ")"})
		case logs.Text == "":
			facts = append(facts, section{"Log", "(empty)"})
		default:
			facts = append(facts, section{fmt.Sprintf("Last %d lines of the entrypoint's log", promptLogLines), logs.Text})
		}
	}
	if jobID, _ := job["job_id"].(string); jobID != "" {
		facts = append(facts, b.rowsSection(ctx, c, "Failed tasks of the job", "tasks", []string{"job_id=" + jobID, "state=FAILED"},
			[]string{"task_id", "name", "attempt_number", "error_type", "error_message", "node_id"}))
		facts = append(facts, b.rowsSection(ctx, c, "Dead actors of the job", "actors", []string{"job_id=" + jobID, "state=DEAD"},
			[]string{"actor_id", "class_name", "death_cause", "num_restarts", "max_restarts"}))
	}
	if st, err := c.ClusterStatus(ctx); err == nil {
		facts = append(facts, section{"Cluster", demandsText(st)})
	}
	q := fmt.Sprintf("The raygo job %s is failing (or failed). Using the facts below, explain the most likely cause, "+
		"point to the lines or errors that show it, and propose a concrete fix. raygo runs Ray's model in Go: jobs are shell entrypoints, "+
		"tasks and actors are Go functions and types; the tools get_task, list_tasks, job_logs and cluster_status can fetch more.", id)
	return userPrompt("Diagnose job "+id, promptText(q, facts)), nil
}

// rowsSection lists up to promptRows rows of kind matching filters, with
// the named fields.
func (b *backend) rowsSection(ctx context.Context, c *apiclient.Client, title, kind string, filters, fields []string) section {
	res, err := c.List(ctx, kind, apiclient.ListOptions{Filters: filters, Limit: promptRows, Detail: true})
	if err != nil {
		return section{title, "(could not be listed: " + err.Error() + ")"}
	}
	if len(res.Rows) == 0 {
		return section{title, "(none)"}
	}
	var rows []map[string]any
	for _, raw := range res.Rows {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		kept := map[string]any{}
		for _, f := range fields {
			if v, ok := m[f]; ok && v != nil && v != "" {
				kept[f] = v
			}
		}
		rows = append(rows, kept)
	}
	body := jsonText(rows)
	if res.NumFiltered > len(rows) {
		body += fmt.Sprintf("\n(%d of %d shown)", len(rows), res.NumFiltered)
	}
	return section{title, body}
}

// demandsText says what the cluster has and what waits.
func demandsText(st *apiclient.ClusterStatus) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d alive nodes, %d dead.\n", st.AliveNodes, st.DeadNodes)
	for _, k := range slices.Sorted(maps.Keys(st.ResourcesTotal)) {
		fmt.Fprintf(&sb, "%s: %g used of %g\n", k, st.ResourcesUsed[k], st.ResourcesTotal[k])
	}
	for _, d := range st.PendingDemands {
		fmt.Fprintf(&sb, "pending demand: {%s} x%d\n", d.Shape, d.Count)
	}
	for _, d := range st.InfeasibleDemands {
		fmt.Fprintf(&sb, "infeasible demand (no node can hold it): {%s} x%d\n", d.Shape, d.Count)
	}
	return sb.String()
}

func (b *backend) whyPending(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	id := req.Params.Arguments["task_id"]
	if id == "" {
		return nil, fmt.Errorf("why_task_pending needs task_id (list_tasks shows them; filter e.g. state=PENDING_NODE_ASSIGNMENT)")
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return nil, err
	}
	task, err := b.get(ctx, req, kindOf("tasks"), id)
	if err != nil {
		return nil, err
	}
	shown := map[string]any{}
	for k, v := range task {
		if k != "events" {
			shown[k] = v
		}
	}
	facts := []section{{"Task", jsonText(shown)}}
	if ev, ok := task["events"].([]any); ok && len(ev) > 0 {
		facts = append(facts, section{"Its state changes", jsonText(ev)})
	}
	required := map[string]float64{}
	if rr, ok := task["required_resources"].(map[string]any); ok {
		for k, v := range rr {
			if f, ok := v.(float64); ok {
				required[k] = f
			}
		}
	}
	st, err := c.ClusterStatus(ctx)
	if err != nil {
		return nil, b.apiError(err, "")
	}
	facts = append(facts, section{"Where it could run", placementText(required, st.Nodes)})
	facts = append(facts, section{"Cluster", demandsText(st)})
	if pg, _ := task["placement_group_id"].(string); pg != "" {
		if row, err := c.Get(ctx, "placement_groups", pg); err == nil {
			facts = append(facts, section{"Its placement group", string(row)})
		}
	}
	q := fmt.Sprintf("The raygo task %s is not running (or was slow to start). Using the facts below, explain why it waits "+
		"(no node with enough free resources, a request no node can ever hold, a placement group not yet placed, a pending dependency, …) "+
		"and what would let it run.", id)
	return userPrompt("Why task "+id+" is pending", promptText(q, facts)), nil
}

// Placement is where a request could go: the alive nodes with room for
// it now, and those whose totals could ever hold it.
type Placement struct {
	FitsNow  []string
	FitsEver []string
}

// placeRequest checks required against each alive node's free and total
// resources. It is pure, for tests.
func placeRequest(required map[string]float64, nodes []apiclient.ClusterStatusNode) Placement {
	var p Placement
	for _, n := range nodes {
		if n.State != "ALIVE" {
			continue
		}
		now, ever := true, true
		for k, want := range required {
			if want <= 0 || resources.IsBundleResource(k) {
				continue
			}
			total := n.ResourcesTotal[k]
			if total < want {
				ever = false
			}
			if total-n.ResourcesUsed[k] < want {
				now = false
			}
		}
		if ever {
			p.FitsEver = append(p.FitsEver, n.NodeID)
		}
		if now && ever {
			p.FitsNow = append(p.FitsNow, n.NodeID)
		}
	}
	return p
}

func placementText(required map[string]float64, nodes []apiclient.ClusterStatusNode) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "It requests %s.\n", jsonText(required))
	p := placeRequest(required, nodes)
	switch {
	case len(p.FitsEver) == 0:
		sb.WriteString("No alive node's total resources can hold this request: it is infeasible until a node that can joins.\n")
	case len(p.FitsNow) == 0:
		fmt.Fprintf(&sb, "%d alive node(s) could hold it (%s) but none has that much free now: it waits for running work to finish.\n",
			len(p.FitsEver), shortList(p.FitsEver, 5))
	default:
		fmt.Fprintf(&sb, "%d alive node(s) have room for it now (%s): if it still waits, look at its dependencies, its placement group, or its state changes.\n",
			len(p.FitsNow), shortList(p.FitsNow, 5))
	}
	for _, n := range nodes {
		if n.State != "ALIVE" {
			continue
		}
		free := map[string]float64{}
		for k, t := range n.ResourcesTotal {
			if !resources.IsBundleResource(k) {
				free[k] = t - n.ResourcesUsed[k]
			}
		}
		fmt.Fprintf(&sb, "node %s (%s): free %s\n", n.NodeID, n.Address, compactJSON(free))
	}
	return sb.String()
}

func compactJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}
