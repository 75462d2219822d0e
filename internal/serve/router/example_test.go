package router_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

func Example() {
	rt, err := router.New(router.Options{MaxQueuedRequests: 1})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	if err := rt.Set([]router.Replica{{ID: "r1", MaxOngoingRequests: 1}}); err != nil {
		panic(err)
	}

	ctx := context.Background()
	lease, _ := rt.Acquire(ctx)
	fmt.Println("first request goes to", lease.Replica())

	// r1 is full: the next request waits in the queue...
	served := make(chan string)
	go func() {
		l, _ := rt.Acquire(ctx)
		served <- l.Replica()
		l.Release()
	}()
	for rt.Stats().Queued == 0 {
		time.Sleep(time.Millisecond)
	}
	// ...and the one after that is refused.
	_, err = rt.Acquire(ctx)
	var bp *router.BackPressureError
	fmt.Println("third request:", errors.As(err, &bp), bp.RetryAfter)

	lease.Release()
	fmt.Println("queued request served by", <-served)
	// Output:
	// first request goes to r1
	// third request: true 1s
	// queued request served by r1
}
