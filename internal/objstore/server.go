package objstore

import (
	"bufio"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// MaxFrame bounds one protocol message (requests carry ids, never data).
const MaxFrame = 16 << 20

// SocketName is the abstract unix socket of the store of the node daemon
// serving gRPC at addr. Abstract sockets leave no file behind; the token
// and the peer's uid guard them.
func SocketName(daemonAddr string) string { return "@raygo/" + daemonAddr + "/store" }

type server struct {
	s   *Store
	lis *net.UnixListener
	wg  sync.WaitGroup

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// conn is one client connection and what it holds in the store.
type conn struct {
	s        *Store
	nc       *net.UnixConn
	client   string            // who, for reports ("worker 1a2b3c4d pid 42")
	creating map[ids.ID]*entry // guarded by s.mu
	pins     map[ids.ID]int    // guarded by s.mu

	wmu sync.Mutex // serializes replies
	wg  sync.WaitGroup
}

func (c *conn) name() string {
	if c == nil || c.client == "" {
		return "?"
	}
	return c.client
}

func serve(s *Store, name string) (*server, error) {
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("objstore: listen on %s: %w", name, err)
	}
	srv := &server{s: s, lis: lis, conns: map[*conn]struct{}{}}
	srv.wg.Add(1)
	go srv.accept()
	return srv, nil
}

func (srv *server) accept() {
	defer srv.wg.Done()
	for {
		nc, err := srv.lis.AcceptUnix()
		if err != nil {
			return
		}
		c := &conn{s: srv.s, nc: nc, creating: map[ids.ID]*entry{}, pins: map[ids.ID]int{}}
		srv.mu.Lock()
		srv.conns[c] = struct{}{}
		srv.mu.Unlock()
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			c.serve()
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
		c.nc.Close()
	}
	srv.mu.Unlock()
	srv.wg.Wait()
}

// serve reads requests until the client goes away, then releases what it
// held. Requests that may wait (create, get) run on their own goroutines;
// the rest are answered in order.
func (c *conn) serve() {
	defer func() {
		c.nc.Close()
		c.wg.Wait()
		c.s.disconnect(c)
	}()
	r := bufio.NewReader(c.nc)
	if err := c.hello(r); err != nil {
		c.s.log.Warn("object store client refused", "err", err)
		return
	}
	for {
		req := &pb.StoreRequest{}
		if err := readFrame(r, req); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("object store client read", "client", c.client, "err", err)
			}
			return
		}
		switch op := req.Op.(type) {
		case *pb.StoreRequest_Create:
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				loc, err := c.s.create(c, op.Create)
				c.reply(req.Seq, err, loc)
			}()
		case *pb.StoreRequest_Get:
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
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
		case *pb.StoreRequest_Delete:
			idList, err := parseIDs(op.Delete.GetObjectIds())
			c.s.Delete(idList...)
			c.reply(req.Seq, err)
		case *pb.StoreRequest_Contains:
			idList, err := parseIDs(op.Contains.GetObjectIds())
			locs := make([]*pb.StoreLocation, len(idList))
			for i, id := range idList {
				locs[i] = &pb.StoreLocation{Found: c.s.Contains(id)}
			}
			c.reply(req.Seq, err, locs...)
		default:
			c.reply(req.Seq, errs.Invalidf("objstore: unknown request %T", req.Op))
		}
	}
}

// hello checks the client's uid and token and sends it the region's fd.
func (c *conn) hello(r *bufio.Reader) error {
	raw, err := c.nc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if credErr != nil {
		return fmt.Errorf("objstore: peer credentials: %w", credErr)
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid && cred.Uid != 0 {
		return fmt.Errorf("objstore: client pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, uid)
	}
	req := &pb.StoreRequest{}
	if err := readFrame(r, req); err != nil {
		return err
	}
	h := req.GetHello()
	if h == nil {
		return errors.New("objstore: first request is not hello")
	}
	if subtle.ConstantTimeCompare([]byte(h.GetToken()), []byte(c.s.cfg.Token)) != 1 {
		c.reply(req.Seq, &errs.Status{Kind: errs.KindInvalid, Message: "objstore: bad token"})
		return fmt.Errorf("objstore: client pid %d sent a bad token", cred.Pid)
	}
	c.client = fmt.Sprintf("%s pid %d", h.GetClient(), cred.Pid)
	c.s.mu.Lock()
	c.s.clients[c] = struct{}{}
	c.s.mu.Unlock()
	frame, err := encodeFrame(&pb.StoreReply{Seq: req.Seq, Capacity: c.s.cfg.Capacity, NodeId: c.s.cfg.NodeID})
	if err != nil {
		return err
	}
	_, _, err = c.nc.WriteMsgUnix(frame, unix.UnixRights(c.s.reg.fd), nil)
	return err
}

// reply answers request seq (0: the client wants no answer).
func (c *conn) reply(seq uint64, err error, locs ...*pb.StoreLocation) {
	if seq == 0 {
		return
	}
	frame, ferr := encodeFrame(&pb.StoreReply{Seq: seq, Error: errs.ToInfo(err), Locations: locs})
	if ferr != nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.Write(frame)
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

// ---------------------------------------------------------------- framing

func encodeFrame(m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 4, 64), m)
	if err != nil {
		return nil, err
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	return b, nil
}

func readFrame(r io.Reader, m proto.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return fmt.Errorf("objstore: frame of %d bytes exceeds the %d-byte limit", n, MaxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return proto.Unmarshal(buf, m)
}
