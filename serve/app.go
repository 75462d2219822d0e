package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve/config"
)

// Application is a set of Go deployments served together: an ingress
// that takes the application's HTTP requests (under its route prefix),
// and others it calls through handles. Ray's Application.
type Application struct {
	name        string
	routePrefix string
	ingress     Deployer
	deps        []Deployer
}

// NewApplication makes an application named name of its ingress
// deployment and the others it uses. ingress may be nil for an
// application reached through handles only.
func NewApplication(name string, ingress Deployer, others ...Deployer) *Application {
	return &Application{name: name, ingress: ingress, deps: others}
}

// RoutePrefix sets the prefix the application's HTTP requests are routed
// by (default "/<name>"); it returns a.
func (a *Application) RoutePrefix(p string) *Application {
	a.routePrefix = p
	return a
}

// Name is the application's name.
func (a *Application) Name() string { return a.name }

// DefaultRunTimeout bounds Run's wait for the application to be RUNNING
// when ctx has no deadline.
const DefaultRunTimeout = 2 * time.Minute

// Run deploys app on the cluster this program is connected to (ray.Init
// first), as Ray's serve.run: it registers the application's code (this
// program's binary; the replicas are its actors) with the Serve
// controller, applies it (a new application, or an update of the one of
// that name: options in place, code changes rolled without dropping
// requests), and waits until it is RUNNING (ctx's deadline, or
// DefaultRunTimeout). The application keeps running after this program
// exits, until Delete or `raygo serve shutdown`; other applications are
// left as they are.
//
// A config file can then override the code's options: an application in
// `raygo serve deploy app.yaml` with import_path set to the
// application's name runs this registered code with the file's options
// over it.
func Run(ctx context.Context, app *Application) error {
	reg, err := register(ctx, app)
	if err != nil {
		return err
	}
	cfg := config.Application{Name: app.name, RoutePrefix: reg.RoutePrefix, ImportPath: app.name}
	if err := headCall(ctx, http.MethodPut, goapp.AppPath+app.name, cfg, nil); err != nil {
		return fmt.Errorf("serve: deploy application %s: %w", app.name, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRunTimeout)
		defer cancel()
	}
	return WaitRunning(ctx, app.name)
}

// Register registers app's code with the Serve controller without
// deploying it: a config file (`raygo serve deploy`, Apply) whose
// application names it in import_path then runs it — for a pipeline that
// ships the program once and manages its applications from files. Run
// registers too.
func Register(ctx context.Context, app *Application) error {
	_, err := register(ctx, app)
	return err
}

func register(ctx context.Context, app *Application) (goapp.Registration, error) {
	reg, err := app.registration()
	if err != nil {
		return reg, err
	}
	if err := headCall(ctx, http.MethodPut, goapp.RegisterPath+app.name, reg, nil); err != nil {
		return reg, fmt.Errorf("serve: register application %s: %w", app.name, err)
	}
	return reg, nil
}

func (a *Application) registration() (goapp.Registration, error) {
	if a.name == "" {
		return goapp.Registration{}, errors.New("serve: an application needs a name")
	}
	jobID, err := ray.JobID()
	if err != nil {
		return goapp.Registration{}, err
	}
	reg := goapp.Registration{Name: a.name, JobID: jobID, RoutePrefix: a.routePrefix}
	if reg.RoutePrefix == "" {
		reg.RoutePrefix = "/" + a.name
	}
	all := a.deps
	if a.ingress != nil {
		reg.Ingress = a.ingress.deploymentName()
		all = append([]Deployer{a.ingress}, a.deps...)
	}
	seen := map[string]bool{}
	for _, d := range all {
		if d == nil {
			return goapp.Registration{}, fmt.Errorf("serve: application %s: a nil deployment", a.name)
		}
		if seen[d.deploymentName()] {
			continue
		}
		seen[d.deploymentName()] = true
		reg.Deployments = append(reg.Deployments, d.registration())
	}
	if len(reg.Deployments) == 0 {
		return goapp.Registration{}, fmt.Errorf("serve: application %s has no deployments", a.name)
	}
	return reg, nil
}

// Status is one application's state as the controller reports it
// (RUNNING, DEPLOYING, UNHEALTHY, DELETING) with its message.
type Status struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// RoutePrefix and URL: where its HTTP ingress is served (URL on
	// the head's proxy, when it runs one).
	RoutePrefix string   `json:"route_prefix"`
	URLs        []string `json:"urls"`
	// Deployments are its deployments' states.
	Deployments []DeploymentStatus `json:"deployments"`
}

// DeploymentStatus is one deployment's state: its status, code version,
// target replica count and replicas.
type DeploymentStatus struct {
	Name           string          `json:"name"`
	Status         string          `json:"status"`
	Message        string          `json:"message"`
	Version        string          `json:"version"`
	TargetReplicas int             `json:"target_replicas"`
	Replicas       []ReplicaStatus `json:"replicas"`
}

// ReplicaStatus is one replica: its id, node, state (STARTING, READY,
// BACKOFF, PENDING, DRAINING), restarts of its slot, and the process it
// runs in (a Go replica's worker).
type ReplicaStatus struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	Node     string `json:"node"`
	HostPort string `json:"host_port"`
	State    string `json:"state"`
	Message  string `json:"message"`
	Restarts int    `json:"restarts"`
	Pid      int    `json:"pid"`
}

// GetStatus returns an application's status (ErrNotFound when none of
// that name is deployed).
func GetStatus(ctx context.Context, name string) (Status, error) {
	var resp struct {
		Applications []Status `json:"applications"`
	}
	if err := headCall(ctx, http.MethodGet, "/api/serve/applications", nil, &resp); err != nil {
		return Status{}, err
	}
	for _, a := range resp.Applications {
		if a.Name == name {
			return a, nil
		}
	}
	return Status{}, fmt.Errorf("%w: application %q is not deployed", ErrNotFound, name)
}

// runPoll is how often WaitRunning asks for the status.
const runPoll = 100 * time.Millisecond

// WaitRunning waits until the application is RUNNING; an UNHEALTHY
// application is still waited for (its replicas are being replaced) and
// its message is in the error ctx's end returns.
func WaitRunning(ctx context.Context, name string) error {
	var last Status
	var lastErr error
	for {
		st, err := GetStatus(ctx, name)
		if err == nil && st.Status == "RUNNING" {
			return nil
		}
		last, lastErr = st, err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("serve: application %s not running: %w (last: %v)", name, ctx.Err(), lastErr)
			}
			return fmt.Errorf("serve: application %s not running: %w (status %s: %s)", name, ctx.Err(), last.Status, last.Message)
		case <-time.After(runPoll):
		}
	}
}

// Delete shuts one application down, as Ray's serve.delete: its
// replicas drain and stop, and Delete returns once the controller no
// longer lists it (or ctx ends). Others keep running.
func Delete(ctx context.Context, name string) error {
	if err := headCall(ctx, http.MethodDelete, goapp.AppPath+name, nil, nil); err != nil {
		return fmt.Errorf("serve: delete application %s: %w", name, err)
	}
	for {
		_, err := GetStatus(ctx, name)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serve: application %s still being deleted: %w", name, ctx.Err())
		case <-time.After(runPoll):
		}
	}
}

// Apply applies one application's config (as a config file's entry:
// for a registered Go application, import_path naming it and the
// deployment options to set over the code's; or a command application),
// leaving the others as they are. It returns once the change is under
// way (WaitRunning waits for it).
func Apply(ctx context.Context, app config.Application) error {
	if app.Name == "" {
		return errors.New("serve: Apply: the application needs a name")
	}
	if err := headCall(ctx, http.MethodPut, goapp.AppPath+app.Name, app, nil); err != nil {
		return fmt.Errorf("serve: apply application %s: %w", app.Name, err)
	}
	return nil
}
