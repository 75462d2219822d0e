package state_test

import (
	"fmt"
	"net/url"

	"github.com/raygo/raygo/internal/state"
)

func ExampleParseQuery() {
	v, _ := url.ParseQuery("filter=state=ALIVE&filter=class_name!=main.Probe&limit=20&detail=true")
	q, err := state.ParseQuery(v)
	fmt.Println(q.Filters, q.Limit, q.Detail, err)

	_, err = state.ParseQuery(url.Values{"limit": {"1000000"}})
	fmt.Println(err)
	// Output:
	// [state=ALIVE class_name!=main.Probe] 20 true <nil>
	// limit "1000000": want a number from 1 to 100000
}
