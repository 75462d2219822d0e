package raylet

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objmgr"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/stopper"
)

// The node's object manager (internal/objmgr): processes ask their node
// daemon to make an object local (PullObject); the daemon pulls it in
// chunks from the nodes holding it over the transfer protocol, served
// beside the gRPC endpoint on a TCP port of its own (TransferAddress
// names it), and tells the object's owner about the new copy.

// pullBudgetFraction is the share of the store's capacity that pulls in
// progress may take (the rest stays for the node's own puts).
const pullBudgetFraction = 0.8

// ownerCallTimeout bounds one call to an owner's object directory.
const ownerCallTimeout = 10 * time.Second

// objects is the daemon's object manager and the transfer endpoint.
type objects struct {
	r      *Raylet
	mgr    *objmgr.Manager
	server *objmgr.Server
	client *objmgr.Client
	stop   *stopper.Stopper
	// advertised is the transfer endpoint's address for other nodes.
	advertised string
}

// startObjects serves the transfer endpoint on the interface the
// daemon's gRPC endpoint listens on (advertised as its address is) and
// starts the pull manager.
func startObjects(r *Raylet) (*objects, error) {
	host, _, err := net.SplitHostPort(r.cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("raylet: object transfer: %w", err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("raylet: object transfer listener: %w", err)
	}
	o := &objects{r: r, stop: stopper.New(), advertised: lis.Addr().String()}
	if r.cfg.AdvertiseHost != "" {
		_, port, _ := net.SplitHostPort(o.advertised)
		o.advertised = net.JoinHostPort(r.cfg.AdvertiseHost, port)
	}
	o.client = objmgr.NewClient(r.cfg.Token, o.resolve)
	budget := int64(float64(r.store.Capacity()) * pullBudgetFraction)
	o.mgr = objmgr.New(objmgr.Config{Self: r.address, BudgetBytes: max(budget, 1), Log: r.log}, r.store, o.client, o)
	if o.server, err = objmgr.Serve(lis, r.cfg.Token, r.store.Read, o.mgr.ServePartial, storeRegion(r.store), r.log); err != nil {
		lis.Close()
		o.mgr.Close()
		return nil, err
	}
	_ = o.stop.Go("raylet.evictions", o.evictionLoop)
	return o, nil
}

// close stops serving, then pulls.
func (o *objects) close() {
	o.stop.Stop()
	o.mgr.StopServing()
	o.server.Close()
	o.mgr.Close()
	o.client.Close()
}

// evictionInterval is how often the daemon tells owners about the
// secondary copies its store evicted.
const evictionInterval = time.Second

// evictionLoop tells owners, best effort, that copies of their objects
// were evicted here (Ray: RemoveObjectLocation), so that pullers stop
// trying this node for them. A lost notice costs a puller one failed
// chunk read, which moves it to another holder.
func (o *objects) evictionLoop(ctx context.Context) {
	t := time.NewTicker(evictionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, e := range o.r.store.TakeEvicted() {
			conn, err := o.r.pool.Get(e.Owner)
			if err != nil {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, ownerCallTimeout)
			_, _ = pb.NewCoreWorkerClient(conn).UpdateObjectLocation(cctx,
				&pb.UpdateObjectLocationRequest{ObjectId: e.ID.Bytes(), Node: o.r.address, Removed: true})
			cancel()
		}
	}
}

// resolve returns a node daemon's transfer address. It is asked each
// time a new connection is opened (pullers keep connections, so that is
// rare next to chunks), so a node restarted at the same address with a
// new transfer port is found.
func (o *objects) resolve(ctx context.Context, node string) (string, error) {
	conn, err := o.r.pool.Get(node)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, ownerCallTimeout)
	defer cancel()
	rep, err := pb.NewNodeDaemonClient(conn).TransferAddress(ctx, &pb.TransferAddressRequest{})
	if err != nil {
		return "", err
	}
	return rep.GetAddress(), nil
}

// Locations implements objmgr.Owners.
func (o *objects) Locations(ctx context.Context, owner string, id ids.ID) ([]string, bool, error) {
	conn, err := o.r.pool.Get(owner)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, ownerCallTimeout)
	defer cancel()
	rep, err := pb.NewCoreWorkerClient(conn).ObjectLocations(ctx, &pb.ObjectLocationsRequest{ObjectIds: [][]byte{id.Bytes()}})
	if err != nil {
		return nil, false, err
	}
	for _, l := range rep.GetObjects() {
		if got, ok := ids.FromBytes(l.GetObjectId()); ok && got == id {
			return l.GetNodes(), !l.GetUnknown(), nil
		}
	}
	return nil, false, errs.Systemf("raylet: owner %s did not answer for object %s", owner, id)
}

// StartPull implements objmgr.Owners.
func (o *objects) StartPull(ctx context.Context, owner string, id ids.ID, node string) ([]string, bool, error) {
	rep, err := o.update(ctx, owner, &pb.UpdateObjectLocationRequest{ObjectId: id.Bytes(), Node: node, Pulling: true})
	if err != nil {
		return nil, false, err
	}
	return rep.GetNodes(), !rep.GetUnknown(), nil
}

// RemoveLocation implements objmgr.Owners.
func (o *objects) RemoveLocation(ctx context.Context, owner string, id ids.ID, node string) error {
	_, err := o.update(ctx, owner, &pb.UpdateObjectLocationRequest{ObjectId: id.Bytes(), Node: node, Removed: true})
	return err
}

func (o *objects) update(ctx context.Context, owner string, req *pb.UpdateObjectLocationRequest) (*pb.UpdateObjectLocationReply, error) {
	conn, err := o.r.pool.Get(owner)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, ownerCallTimeout)
	defer cancel()
	return pb.NewCoreWorkerClient(conn).UpdateObjectLocation(ctx, req)
}

// AddLocation implements objmgr.Owners.
func (o *objects) AddLocation(ctx context.Context, owner string, id ids.ID, node string) (bool, error) {
	rep, err := o.update(ctx, owner, &pb.UpdateObjectLocationRequest{ObjectId: id.Bytes(), Node: node})
	if err != nil {
		return false, err
	}
	return !rep.GetUnknown(), nil
}

// PullObject makes an object local: it returns once the object is in
// this node's store (see objmgr.Manager.Pull for merging, admission and
// errors).
func (r *Raylet) PullObject(ctx context.Context, req *pb.PullObjectRequest) (*pb.PullObjectReply, error) {
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return nil, errs.Invalidf("raylet: PullObject needs an object id")
	}
	owner, _ := ids.FromBytes(req.GetOwnerId())
	err := r.objects.mgr.Pull(ctx, objmgr.Request{ID: id, Size: req.GetSize(), Owner: req.GetOwnerAddress(), OwnerID: owner, Hints: req.GetLocations()})
	if err != nil {
		return nil, err
	}
	return &pb.PullObjectReply{}, nil
}

// TransferAddress names this node's chunk endpoint.
func (r *Raylet) TransferAddress(context.Context, *pb.TransferAddressRequest) (*pb.TransferAddressReply, error) {
	return &pb.TransferAddressReply{Address: r.objects.advertised}, nil
}

// pullStats reports the object manager's counters.
func (r *Raylet) pullStats() *pb.PullStats {
	st := r.objects.mgr.Stats()
	st.ChunksServed = r.objects.server.Served()
	return st
}

// storeRegion is the store's region for zero-copy sends.
func storeRegion(st interface{ Region() (int, []byte) }) *objmgr.Region {
	fd, mem := st.Region()
	return &objmgr.Region{FD: fd, Mem: mem}
}
