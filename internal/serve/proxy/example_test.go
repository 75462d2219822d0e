package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/raygo/raygo/internal/serve/proxy"
)

func Example() {
	// A replica: any HTTP server; it gets the full path.
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "cart got %s under %s", r.URL.Path, r.Header.Get(proxy.HeaderForwardedPrefix))
	}))
	defer replica.Close()

	p, err := proxy.New(proxy.Options{NodeID: "node-1"})
	if err != nil {
		panic(err)
	}
	defer p.Close()
	err = p.SetRoutes([]proxy.Route{{
		Prefix: "/shop", App: "shop", Deployment: "Cart",
		Replicas: []proxy.Replica{{ID: "cart-1", Node: "node-1", URL: replica.URL, MaxOngoingRequests: 10}},
	}})
	if err != nil {
		panic(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()

	for _, path := range []string{"/shop/cart", "/shopping"} {
		req, _ := http.NewRequest(http.MethodGet, front.URL+path, nil)
		req.Header.Set(proxy.HeaderRequestID, "req-1") // else one is generated
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %d %s\n", path, resp.StatusCode, body)
	}
	// Output:
	// /shop/cart: 200 cart got /shop/cart under /shop
	// /shopping: 404 {"error":"path \"/shopping\" matches no route; GET /-/routes lists them","routes":["/shop"],"request_id":"req-1"}
}
