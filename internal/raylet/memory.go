package raylet

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/internal/pb"
)

// maxDeathCauses bounds the remembered causes of worker deaths.
const maxDeathCauses = 1000

// startMonitor starts the memory monitor unless it is disabled.
func (r *Raylet) startMonitor() error {
	if r.cfg.MemoryUsageThreshold < 0 {
		return nil
	}
	threshold := r.cfg.MemoryUsageThreshold
	if threshold == 0 {
		threshold = memmonitor.DefaultThreshold
	}
	m, err := memmonitor.New(memmonitor.Config{Threshold: threshold, Interval: r.cfg.MemoryMonitorInterval}, r.onMemoryPressure)
	if err != nil {
		return fmt.Errorf("raylet: memory monitor: %w", err)
	}
	r.mu.Lock()
	r.monitor = m
	r.mu.Unlock()
	m.Start()
	return nil
}

// onMemoryPressure kills one leased worker: retriable work before the
// rest, the most recently started first. Its owner learns why through
// WorkerDeathCause and retries the task on its out-of-memory counter.
func (r *Raylet) onMemoryPressure(u memmonitor.Usage) {
	r.mu.Lock()
	var cands []memmonitor.Candidate
	var ws []*worker
	for _, l := range r.leases {
		if l.w == nil || l.w.dead || l.w.pid == 0 {
			continue
		}
		cands = append(cands, memmonitor.Candidate{ID: l.w.id.String(), PID: l.w.pid, Retriable: l.retriable, IsActor: l.actor, Started: l.started})
		ws = append(ws, l.w)
	}
	r.mu.Unlock()
	if len(cands) == 0 {
		r.log.Warn("node memory above threshold and no worker to kill", "used", u.Used, "total", u.Total, "source", u.Source)
		return
	}
	procs := make([]memmonitor.ProcMem, 0, len(cands))
	names := map[int]string{}
	for i := range cands {
		if pm, err := memmonitor.Process(cands[i].PID); err == nil {
			cands[i].Mem = pm.Anon
			procs = append(procs, pm)
			names[pm.PID] = "worker " + ws[i].id.Short()
		}
	}
	i := memmonitor.PickVictim(cands)
	if i < 0 {
		return
	}
	w := ws[i]
	msg := memmonitor.Report(u, r.monitor.Threshold(), procs, names)
	r.mu.Lock()
	r.oomKills++
	r.rememberCauseLocked(w.id, &pb.ErrorInfo{Kind: errs.KindOutOfMemory, NodeId: r.nodeID.String(), WorkerId: w.id.String(), Message: msg})
	w.killReason = "killed by the memory monitor: " + msg
	r.mu.Unlock()
	r.log.Warn("memory monitor killed a worker", "worker", w.id, "pid", w.pid, "retriable", cands[i].Retriable, "usage", msg)
	w.kill()
}

func (r *Raylet) rememberCauseLocked(id ids.ID, info *pb.ErrorInfo) {
	if _, ok := r.deathCauses[id]; !ok {
		r.causeOrder = append(r.causeOrder, id)
	}
	r.deathCauses[id] = info
	for len(r.causeOrder) > maxDeathCauses {
		delete(r.deathCauses, r.causeOrder[0])
		r.causeOrder = r.causeOrder[1:]
	}
}

// WorkerDeathCause tells an owner why a worker died, when the daemon
// killed it for a reason (today: the memory monitor).
func (r *Raylet) WorkerDeathCause(_ context.Context, req *pb.WorkerDeathCauseRequest) (*pb.WorkerDeathCauseReply, error) {
	id, ok := ids.FromBytes(req.GetWorkerId())
	if !ok {
		return nil, errs.Invalidf("raylet: WorkerDeathCause needs a worker id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.WorkerDeathCauseReply{Cause: r.deathCauses[id]}, nil
}

// memoryUsage is the monitor's latest reading.
func (r *Raylet) memoryUsage() *pb.MemoryUsage {
	r.mu.Lock()
	m, kills := r.monitor, r.oomKills
	r.mu.Unlock()
	if m == nil {
		u, err := memmonitor.System()
		if err != nil {
			return nil
		}
		return &pb.MemoryUsage{Used: u.Used, Total: u.Total, Source: u.Source, Threshold: -1}
	}
	u, err := m.Last()
	if err != nil {
		return &pb.MemoryUsage{Threshold: m.Threshold(), OomKills: kills}
	}
	return &pb.MemoryUsage{Used: u.Used, Total: u.Total, Source: u.Source, Threshold: m.Threshold(), OomKills: kills}
}
