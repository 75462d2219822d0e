package objstore

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/framed"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
)

// SocketName is the local unix socket of the store of the node daemon
// serving gRPC at addr (see package localsock): abstract on Linux, a
// socket file on darwin; the token and the peer's uid guard it. Where
// there are no local sockets (windows) the error wraps
// localsock.ErrUnsupported.
func SocketName(daemonAddr string) (string, error) {
	return localsock.Name(daemonAddr, localsock.Store)
}

type server struct {
	s   *Store
	lis *framed.Listener
	wg  sync.WaitGroup

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// storePurpose names store connections in the framed hello.
const storePurpose = "objstore"

// MaxPendingPerClient bounds the creates and gets one connection may have
// waiting at once (each may wait for space or a restore); more are refused
// with an error rather than queued without limit.
const MaxPendingPerClient = 4096

// conn is one client connection and what it holds in the store.
type conn struct {
	s        *Store
	fc       *framed.Conn
	client   string            // who, for reports ("worker 1a2b3c4d pid 42")
	worker   ids.ID            // its worker id from the hello: the owner of what it creates, unless a create names another
	job      ids.ID            // its job, from the hello
	creating map[ids.ID]*entry // guarded by s.mu
	pins     map[ids.ID]int    // guarded by s.mu

	wg      sync.WaitGroup
	pending atomic.Int32 // creates and gets in flight
}

// startAsync admits a request that runs on its own goroutine, or refuses
// it when the client already has MaxPendingPerClient in flight.
func (c *conn) startAsync(seq uint64) bool {
	if c.pending.Add(1) > MaxPendingPerClient {
		c.pending.Add(-1)
		c.reply(seq, errs.Invalidf("objstore: client %s has %d creates and gets in flight, the limit", c.name(), MaxPendingPerClient))
		return false
	}
	c.wg.Add(1)
	return true
}

func (c *conn) endAsync() {
	c.pending.Add(-1)
	c.wg.Done()
}

func (c *conn) name() string {
	if c == nil || c.client == "" {
		return "?"
	}
	return c.client
}

func serve(s *Store, name string) (*server, error) {
	lis, err := framed.Listen(name, s.cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	srv := &server{s: s, lis: lis, conns: map[*conn]struct{}{}}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

func (srv *server) accept() {
	defer srv.wg.Done()
	for {
		fc, err := srv.lis.Accept()
		if err != nil {
			return
		}
		c := &conn{s: srv.s, fc: fc, creating: map[ids.ID]*entry{}, pins: map[ids.ID]int{}}
		srv.mu.Lock()
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			c.serve(srv.lis)
			srv.mu.Lock()
			delete(srv.conns, c)
			srv.mu.Unlock()
		}()
	}
}

func (srv *server) close() {
	srv.lis.Close()
	srv.mu.Lock()
	for c := range srv.conns {
		c.fc.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
}

// serve greets the client, then reads requests until it goes away and
// releases what it held. Requests that may wait (create, get) run on their
// own goroutines; the rest are answered in order.
func (c *conn) serve(lis *framed.Listener) {
	defer func() {
		c.fc.Close()
		c.wg.Wait()
		c.s.disconnect(c)
	}()
	c.fc.SetMaxFrame(wirecheck.ListMessageBytes) // store requests carry ids, never object bytes
	if err := c.hello(lis); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
			errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			// It went away before its hello: a process killed or exiting.
			c.s.log.Debug("object store client left before its hello", "err", err)
			return
		}
		c.s.log.Warn("object store client refused", "err", err)
		return
	}
	for {
		req := &pb.StoreRequest{}
		if err := c.fc.Read(req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("object store client read", "client", c.client, "err", err)
			}
			return
		}
		if err := wirecheck.StoreRequest(req); err != nil {
			c.reply(req.Seq, err)
			continue
		}
		switch op := req.Op.(type) {
		case *pb.StoreRequest_Create:
			if !c.startAsync(req.Seq) {
				continue
			}
			go func() {
				defer c.endAsync()
				loc, err := c.s.create(c, op.Create)
				c.reply(req.Seq, err, loc)
			}()
		case *pb.StoreRequest_Get:
			if !c.startAsync(req.Seq) {
				continue
			}
			go func() {
				defer c.endAsync()
				idList, err := parseIDs(op.Get.GetObjectIds())
				if err != nil {
					c.reply(req.Seq, err)
					return
				}
				c.reply(req.Seq, nil, c.s.get(c, idList)...)
			}()
		case *pb.StoreRequest_Seal:
			var err error
			for _, b := range op.Seal.GetObjectIds() {
				id, ok := ids.FromBytes(b)
				if !ok {
					err = errs.Invalidf("objstore: seal needs an object id")
					break
				}
				if err = c.s.seal(c, id); err != nil {
					break
				}
			}
			c.reply(req.Seq, err)
		case *pb.StoreRequest_Abort:
			idList, err := parseIDs(op.Abort.GetObjectIds())
			for _, id := range idList {
				c.s.abort(c, id)
			}
			c.reply(req.Seq, err)
		case *pb.StoreRequest_Release:
			idList, err := parseIDs(op.Release.GetObjectIds())
			c.s.release(c, idList)
			c.reply(req.Seq, err)
		default:
			c.reply(req.Seq, errs.Invalidf("objstore: unknown request %T", req.Op))
		}
	}
}

// hello checks the client (uid and token, in the framed hello), then
// sends it the store's size and the region's fd.
func (c *conn) hello(lis *framed.Listener) error {
	peer, err := lis.Hello(c.fc)
	if err != nil {
		return err
	}
	if peer.Purpose != storePurpose {
		return fmt.Errorf("objstore: pid %d connected for %q", peer.PID, peer.Purpose)
	}
	c.client = fmt.Sprintf("%s pid %d", peer.Name, peer.PID)
	c.worker, c.job = peer.WorkerID, peer.JobID
	c.s.mu.Lock()
	c.s.clients[c] = struct{}{}
	c.s.mu.Unlock()
	return c.fc.WriteWithFD(&pb.StoreReply{Capacity: c.s.cfg.Capacity}, c.s.reg.fd)
}

// reply answers request seq (0: the client wants no answer).
func (c *conn) reply(seq uint64, err error, locs ...*pb.StoreLocation) {
	if seq == 0 {
		return
	}
	_ = c.fc.Write(&pb.StoreReply{Seq: seq, Error: errs.ToInfo(err), Locations: locs})
}

func parseIDs(list [][]byte) ([]ids.ID, error) {
	out := make([]ids.ID, 0, len(list))
	for _, b := range list {
		id, ok := ids.FromBytes(b)
		if !ok {
			return out, errs.Invalidf("objstore: bad object id %x", b)
		}
		out = append(out, id)
	}
	return out, nil
}
