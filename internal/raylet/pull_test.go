package raylet_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// TestPullBetweenDaemons runs real node daemons (gRPC, transfer
// endpoints, stores): a node pulls an object from the one that holds it;
// another pulls it with a dead holder listed first and gets it from the
// live one; with only the dead holder it fails naming it.
func TestPullBetweenDaemons(t *testing.T) {
	big := func(rc *raylet.Config) { rc.ObjectStoreBytes = 64 << 20 }
	cpu := resources.Set{resources.CPU: 1}
	c := startClusterWith(t, big, cpu)
	a, b, d := c.nodes[0], c.addNode(cpu), c.addNode(cpu)
	data := make([]byte, 20<<20) // three chunks
	for i := range data {
		data[i] = byte(i * 31)
	}
	id := ids.New()
	if err := a.Store().Put(id, data, "", ids.Nil); err != nil {
		t.Fatal(err)
	}
	pull := func(to *raylet.Raylet, hints ...string) error {
		_, err := c.daemon(to.Address()).PullObject(testCtx(t), &pb.PullObjectRequest{ObjectId: id.Bytes(), Size: int64(len(data)), Locations: hints})
		return err
	}
	read := func(r *raylet.Raylet) []byte {
		var got []byte
		if _, err := r.Store().Read(id, func(b []byte) error { got = append(got, b...); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}

	if err := pull(b, a.Address()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(b), data) {
		t.Fatal("the pulled copy differs")
	}

	// b holds a copy now; stop it: d's pull tries it and moves to a.
	bAddr := b.Address()
	b.Stop()
	if err := pull(d, bAddr, a.Address()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(d), data) {
		t.Fatal("the copy pulled past a dead holder differs")
	}
	st, err := c.daemon(d.Address()).NodeStats(testCtx(t), &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if p := st.GetPulls(); p.GetSourceFailures() != 1 || p.GetCompleted() != 1 || p.GetBytesPulled() != int64(len(data)) {
		t.Fatalf("pull stats %v: want one failed source, one pull of %d bytes", p, len(data))
	}

	// Only the dead holder: a typed object-lost error naming it.
	d.Store().Delete(id)
	err = pull(d, bAddr)
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || !errors.Is(err, errs.ErrObjectLost) || !strings.Contains(err.Error(), bAddr) {
		t.Fatalf("pull from a dead holder only: %v, want object lost naming %s", err, bAddr)
	}
}
