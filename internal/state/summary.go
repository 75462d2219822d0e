package state

// Summaries, in Ray's shapes (python/ray/util/state/common.py:
// TaskSummaries, ActorSummaries, ObjectSummaries), under
// {"node_id_to_summary": {"cluster": …}}. Objects have no call sites in
// raygo, so they are summarized by node and state instead.

// Task types, Ray's names (taskevents.Task.Type).
const (
	taskTypeNormal   = "NORMAL_TASK"
	taskTypeCreation = "ACTOR_CREATION_TASK"
	taskTypeActor    = "ACTOR_TASK"
)

// TaskSummaryPerFunc counts one function's (or actor class's) tasks by
// state.
type TaskSummaryPerFunc struct {
	FuncOrClassName string         `json:"func_or_class_name"`
	Type            string         `json:"type"`
	StateCounts     map[string]int `json:"state_counts"`
}

// TaskSummaries is Ray's task summary, grouped by func_or_class_name.
type TaskSummaries struct {
	Summary             map[string]*TaskSummaryPerFunc `json:"summary"`
	TotalTasks          int                            `json:"total_tasks"`
	TotalActorTasks     int                            `json:"total_actor_tasks"`
	TotalActorScheduled int                            `json:"total_actor_scheduled"`
	SummaryBy           string                         `json:"summary_by"`
}

func newTaskSummaries() *TaskSummaries {
	return &TaskSummaries{Summary: map[string]*TaskSummaryPerFunc{}, SummaryBy: "func_name"}
}

// add counts one task attempt.
func (s *TaskSummaries) add(funcName, typ, state string) {
	g := s.Summary[funcName]
	if g == nil {
		g = &TaskSummaryPerFunc{FuncOrClassName: funcName, Type: typ, StateCounts: map[string]int{}}
		s.Summary[funcName] = g
	}
	g.StateCounts[state]++
	switch typ {
	case taskTypeNormal:
		s.TotalTasks++
	case taskTypeCreation:
		s.TotalActorScheduled++
	case taskTypeActor:
		s.TotalActorTasks++
	}
}

// ActorSummaryPerClass counts one class's actors by state.
type ActorSummaryPerClass struct {
	ClassName   string         `json:"class_name"`
	StateCounts map[string]int `json:"state_counts"`
}

// ActorSummaries is Ray's actor summary, grouped by class_name.
type ActorSummaries struct {
	Summary     map[string]*ActorSummaryPerClass `json:"summary"`
	TotalActors int                              `json:"total_actors"`
	SummaryBy   string                           `json:"summary_by"`
}

func summarizeActors(rows []actorRow) *ActorSummaries {
	s := &ActorSummaries{Summary: map[string]*ActorSummaryPerClass{}, SummaryBy: "class"}
	for i := range rows {
		r := &rows[i]
		g := s.Summary[r.class]
		if g == nil {
			g = &ActorSummaryPerClass{ClassName: r.class, StateCounts: map[string]int{}}
			s.Summary[r.class] = g
		}
		g.StateCounts[r.state]++
		s.TotalActors++
	}
	return s
}

// ObjectSummaryPerNode counts one node's objects, and their sizes, by
// state.
type ObjectSummaryPerNode struct {
	NodeID       string             `json:"node_id"`
	TotalObjects int                `json:"total_objects"`
	TotalSizeMB  float64            `json:"total_size_mb"`
	StateCounts  map[string]int     `json:"state_counts"`
	StateSizeMB  map[string]float64 `json:"state_size_mb"`
}

// ObjectSummaries summarizes objects by node (Ray's is by call site,
// which raygo does not record: callsite_enabled is false).
type ObjectSummaries struct {
	Summary         map[string]*ObjectSummaryPerNode `json:"summary"`
	TotalObjects    int                              `json:"total_objects"`
	TotalSizeMB     float64                          `json:"total_size_mb"`
	CallsiteEnabled bool                             `json:"callsite_enabled"`
	SummaryBy       string                           `json:"summary_by"`
}

const mib = 1 << 20

func summarizeObjects(rows []objectRow) *ObjectSummaries {
	s := &ObjectSummaries{Summary: map[string]*ObjectSummaryPerNode{}, SummaryBy: "node"}
	for i := range rows {
		r := &rows[i]
		g := s.Summary[r.nodeID]
		if g == nil {
			g = &ObjectSummaryPerNode{NodeID: r.nodeID, StateCounts: map[string]int{}, StateSizeMB: map[string]float64{}}
			s.Summary[r.nodeID] = g
		}
		mb := float64(r.size) / mib
		g.TotalObjects++
		g.TotalSizeMB += mb
		g.StateCounts[r.state]++
		g.StateSizeMB[r.state] += mb
		s.TotalObjects++
		s.TotalSizeMB += mb
	}
	return s
}
