package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The messages are protobuf well-known types (wrapperspb), which need no
// generated code and which protoactor-go's default proto serializer finds
// in the global registry:
//
//	StringValue "ping" with a sender (RequestFuture) -> the actor Responds StringValue "ok"
//	StringValue "ping" without a sender (Send)        -> the actor counts it
//	Int64Value N (RequestFuture)                      -> the actor answers once it has counted N pings
const echoActorName = "echo"

// logLevel is the level of protoactor-go's logs: warnings and worse while
// benchmarks run, nothing during teardown (where "EndpointWriter lost
// connection" errors are expected).
var logLevel = func() *slog.LevelVar {
	v := new(slog.LevelVar)
	v.Set(slog.LevelWarn)
	return v
}()

const quiet = slog.LevelError + 100

// newActorSystem returns an actor system that logs to stderr at logLevel,
// with remoting on a free 127.0.0.1 port.
func newActorSystem() (*actor.ActorSystem, *remote.Remote) {
	logLevel.Set(slog.LevelWarn)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
	r := remote.NewRemote(system, remote.Configure("127.0.0.1", 0))
	r.Start()
	return system, r
}

// echoActor answers requests and counts one-way messages.
type echoActor struct {
	count, want int64
	waiter      *actor.PID
}

func (a *echoActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *wrapperspb.StringValue:
		if ctx.Sender() != nil {
			ctx.Respond(wrapperspb.String("ok"))
			return
		}
		a.count++
		if a.waiter != nil && a.count == a.want {
			ctx.Send(a.waiter, wrapperspb.Int64(a.count))
			a.waiter = nil
		}
	case *wrapperspb.Int64Value:
		a.count, a.want, a.waiter = 0, m.Value, ctx.Sender()
	}
}

// serveProtoactor is the child process: an actor system with the echo
// actor, remoting on 127.0.0.1.
func serveProtoactor() error {
	system, r := newActorSystem()
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &echoActor{} }), echoActorName); err != nil {
		return err
	}
	serveUntilStdinCloses(system.ProcessRegistry.Address)
	logLevel.Set(quiet)
	r.Shutdown(false)
	return nil
}

// protoactorPair starts the far process and a local actor system (with
// remoting, so that replies can reach its futures) and returns the far
// actor's PID.
func protoactorPair(ctx context.Context) (*child, *actor.ActorSystem, *remote.Remote, *actor.PID, error) {
	c, err := startChild(ctx, "serve-protoactor")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	system, r := newActorSystem()
	return c, system, r, actor.NewPID(c.addr, echoActorName), nil
}

// teardown stops the far process, then the local remoting, quietly.
func teardown(c *child, r *remote.Remote) {
	logLevel.Set(quiet)
	c.stop()
	r.Shutdown(false)
}

const futureTimeout = 30 * time.Second

// protoactorRequest: batches of RequestFuture calls to the far actor, then
// a wait on each future; calls (request + reply) per second.
func protoactorRequest(ctx context.Context, o options) (float64, error) {
	c, system, r, pid, err := protoactorPair(ctx)
	if err != nil {
		return 0, err
	}
	defer teardown(c, r)
	root := system.Root
	msg := wrapperspb.String("ping")
	futures := make([]*actor.Future, o.batch)
	return measure(ctx, o.duration, float64(o.batch), func(context.Context) error {
		for i := range futures {
			futures[i] = root.RequestFuture(pid, msg, futureTimeout)
		}
		for _, f := range futures {
			res, err := f.Result()
			if err != nil {
				return err
			}
			if s, ok := res.(*wrapperspb.StringValue); !ok || s.Value != "ok" {
				return fmt.Errorf("reply %v", res)
			}
		}
		return nil
	})
}

// protoactorSend: rounds of fire-and-forget Sends to the far actor, each
// round ending when the far actor has counted all of its messages (it
// then answers the round's opening request); one-way messages per second.
func protoactorSend(ctx context.Context, o options) (float64, error) {
	c, system, r, pid, err := protoactorPair(ctx)
	if err != nil {
		return 0, err
	}
	defer teardown(c, r)
	root := system.Root
	msg := wrapperspb.String("ping")
	n := int64(o.sendRound)
	return measure(ctx, o.duration, float64(n), func(context.Context) error {
		// The opening request travels the same connection as the pings,
		// ahead of them, so the far actor resets its count first.
		done := root.RequestFuture(pid, wrapperspb.Int64(n), futureTimeout)
		for range n {
			root.Send(pid, msg)
		}
		res, err := done.Result()
		if errors.Is(err, actor.ErrTimeout) {
			return fmt.Errorf("the far actor did not count %d messages within %s (messages lost?)", n, futureTimeout)
		}
		if err != nil {
			return err
		}
		if got, ok := res.(*wrapperspb.Int64Value); !ok || got.Value != n {
			return fmt.Errorf("far actor counted %v, want %d", res, n)
		}
		return nil
	})
}
