package actorsubmit

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// rebuild readies a finished call to run again, as taskmgr.Rebuild does
// (a new attempt, no longer finished).
func (r *fakeResults) rebuild(t *taskmgr.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stateLocked(t).done = false
	t.Spec.Attempt++
}

// TestResubmit: a finished call sent again (a rebuild of its lost
// results) waits while its actor restarts after its process died, then
// runs on the restarted actor ahead of a call made after it; a call sent
// again to an actor dead for good, after the submitter forgot the actor,
// fails with the death cause.
func TestResubmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p1 := w.alive(actor, "proc-1")
		c1, c2 := newCall("m", 1), newCall("m", 1)
		w.submit(t, actor, c1, c2)
		w.waitDone(t, c1, c2)
		p1.kill()
		w.c.set(actor, restarting, "", nil)
		synctest.Wait()

		w.r.rebuild(c1)
		if err := w.s.Resubmit(c1); err != nil {
			t.Fatal(err)
		}
		if err := w.s.Submit(newCall("m", 0), actor, "counter", false); err != nil { // its arguments never resolve
			t.Fatal(err)
		}
		synctest.Wait()
		if w.r.done(c1) {
			t.Fatal("the call ran again before its actor was back")
		}
		p2 := w.alive(actor, "proc-2")
		w.waitDone(t, c1)
		if got := p2.seqs(); !slices.Equal(got, []uint64{1}) {
			t.Fatalf("the restarted actor ran %v, want the call sent again (1)", got)
		}
		if r := w.r.get(c1); len(r.replies) != 2 || string(r.replies[1].GetReturns()[0].GetData()) != "seq 1 attempt 1" {
			t.Fatalf("the call sent again: %+v", r.replies)
		}

		died := errs.ToInfo(&errs.ActorDiedError{ActorID: actor.String(), Name: "counter", Reason: "its node died", Cause: errs.ActorNodeDied})
		p2.kill()
		w.c.set(actor, pb.ActorState_ACTOR_STATE_DEAD, "", died)
		synctest.Wait()
		w.s.Forget(actor)
		if st := w.s.Stats(); st.Actors != 0 {
			t.Fatalf("after Forget: %+v", st)
		}
		w.r.rebuild(c2)
		if err := w.s.Resubmit(c2); err != nil {
			t.Fatal(err)
		}
		w.waitDone(t, c2)
		var ad *errs.ActorDiedError
		if r := w.r.get(c2); !errors.As(errs.FromInfo(r.final), &ad) || ad.Reason != "its node died" {
			t.Fatalf("a call sent again to a dead actor: %v", r.final)
		}
		if err := w.s.Resubmit(newCall("m", 1)); err == nil {
			t.Fatal("Resubmit of a call never submitted: no error")
		}
	})
}
