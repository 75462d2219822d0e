// Package goapp is the wire between a Go program's Serve deployments
// (package serve, running in the user's binary) and the Serve
// controller on the head (internal/serve/controller): how a program
// registers its Go applications, and how a replica — an actor of the
// program's binary that the controller creates — learns what it is and
// tells the controller where it listens.
//
// The flow, all over the head's REST API with the caller's token:
//
//   - serve.Run registers the application (PUT RegisterPath+name, a
//     Registration: the job whose binary holds the code, and each
//     deployment's actor class and options as the code declares them),
//     then applies it (PUT /api/serve/applications/{name}).
//   - For each replica the controller creates a detached actor of the
//     deployment's class on the node it chose, named ReplicaActorName,
//     in namespace ReplicaNamespace. Its constructor asks GET
//     ReplicaPath+actorID for its Init, starts the user's value and
//     its HTTP listener, and reports PUT ReplicaPath+actorID
//     (Address) before it returns, so an actor that is ALIVE has an
//     address.
//   - The controller, and the proxies, reach the replica's listener with
//     TokenHeader set to Init.UpstreamToken; the replica refuses
//     anything else. Control paths on it: HealthPath (GET: the user's
//     CheckHealth), ReconfigurePath (POST the user config JSON: the
//     user's Reconfigure), DrainPath (POST: stop taking requests, finish
//     those in flight within the drain timeout, then the user's
//     Shutdown).
package goapp

import (
	"github.com/raygo/raygo/serve/config"
)

// REST paths on the head.
const (
	// RegisterPath + name: PUT a Registration (write scope).
	RegisterPath = "/api/serve/go_apps/"
	// ReplicaPath + actor id: GET the replica's Init, PUT its Address
	// (write scope).
	ReplicaPath = "/api/serve/replicas/"
	// AppPath + name: PUT one application's config (YAML or JSON of a
	// config.Application), DELETE it.
	AppPath = "/api/serve/applications/"
)

// Paths a Go replica answers itself, besides the user's handler.
const (
	HealthPath      = "/-/raygo/healthz"
	ReconfigurePath = "/-/raygo/reconfigure"
	DrainPath       = "/-/raygo/drain"
	// TokenHeader carries the cluster's upstream token on every request
	// to a replica (the proxy's X-Raygo-Token).
	TokenHeader = "X-Raygo-Token"
)

// ReplicaNamespace is the actor namespace of every Go replica.
const ReplicaNamespace = "serve"

// ReplicaPrefix starts every replica's actor name.
const ReplicaPrefix = "SERVE_REPLICA::"

// ReplicaActorName is the actor name of a replica: Ray's
// "SERVE_REPLICA::app#deployment#id".
func ReplicaActorName(app, deployment, replica string) string {
	return ReplicaPrefix + app + "#" + deployment + "#" + replica
}

// ClassName is the actor class a Go deployment's replicas are registered
// under in the user's binary.
func ClassName(deployment string) string { return "raygo.serve/" + deployment }

// ValidName reports whether s is usable as an application, deployment
// or method name: the config file's rule (config.ValidName).
func ValidName(s string) bool { return config.ValidName(s) }

// Registration is a Go application as its program declares it.
type Registration struct {
	// Name is the application's registered name (a config's
	// import_path).
	Name string `json:"name"`
	// JobID is the job whose binary holds the code (hex).
	JobID string `json:"job_id"`
	// Ingress is the deployment HTTP requests go to ("": none, the
	// application is reached through handles only).
	Ingress string `json:"ingress,omitempty"`
	// RoutePrefix is the code's route prefix ("" : "/<name>").
	RoutePrefix string `json:"route_prefix,omitempty"`
	// Deployments are the application's deployments, ingress included.
	Deployments []Deployment `json:"deployments"`
}

// Deployment is one Go deployment of a Registration.
type Deployment struct {
	Name string `json:"name"`
	// Class is the actor class its replicas are (ClassName(Name)).
	Class string `json:"class"`
	// HTTP: its value is an http.Handler (the replica serves it).
	HTTP bool `json:"http"`
	// Config is the deployment's options as the code sets them.
	Config config.Deployment `json:"config"`
}

// Init is what a replica is, from the controller.
type Init struct {
	App        string `json:"app"`
	Deployment string `json:"deployment"`
	Replica    string `json:"replica"`
	// Host is the interface to listen on: the node's address.
	Host string `json:"host"`
	// UpstreamToken is TokenHeader's value.
	UpstreamToken string `json:"upstream_token"`
	// UserConfig is the deployment's user_config as JSON (null: none).
	UserConfig []byte `json:"user_config,omitempty"`
	// MaxOngoingRequests bounds the handler calls it runs at once.
	MaxOngoingRequests int `json:"max_ongoing_requests"`
	// DrainTimeoutMs is graceful_shutdown_timeout_s.
	DrainTimeoutMs int64 `json:"drain_timeout_ms"`
}

// Address is a replica's report of where it listens.
type Address struct {
	HostPort string `json:"host_port"`
}

// HandleReplica is one replica a handle may call.
type HandleReplica struct {
	ID        string `json:"id"`
	ActorName string `json:"actor_name"`
	Node      string `json:"node"`
}

// HandleTarget is GET HandlePath?app=A&deployment=D's answer: the
// deployment's ready replicas and its limit per replica.
type HandleTarget struct {
	Replicas           []HandleReplica `json:"replicas"`
	MaxOngoingRequests int             `json:"max_ongoing_requests"`
}

// HandlePath is where handles learn a deployment's replicas (read
// scope).
const HandlePath = "/api/serve/handle_targets"
