package routes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPostLoad(t *testing.T) {
	var got LoadReport
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != LoadPath || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "refused: "+r.Method+" "+r.URL.Path, http.StatusForbidden)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	rep := LoadReport{Node: "n1", Deployments: []DeploymentLoad{{App: "a", Deployment: "d", InFlight: 3, Queued: 1}}}
	if err := PostLoad(context.Background(), srv.Client(), srv.URL+"/", "tok", rep); err != nil {
		t.Fatal(err)
	}
	if got.Node != "n1" || len(got.Deployments) != 1 || got.Deployments[0] != rep.Deployments[0] {
		t.Fatalf("head got %+v, want %+v", got, rep)
	}
	err := PostLoad(context.Background(), srv.Client(), srv.URL, "bad", rep)
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "refused: POST "+LoadPath) {
		t.Fatalf("PostLoad with a bad token: %v, want the status and the head's message", err)
	}
}
