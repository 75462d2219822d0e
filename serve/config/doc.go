// Package config is raygo Serve's declarative application config: the
// YAML file that `raygo serve deploy app.yaml` reads and `raygo serve
// status` writes back, Ray Serve's config file (ServeDeploySchema) adapted
// to raygo.
//
// A file says where proxies run (proxy_location), how they listen
// (http_options, grpc_options) and which applications run. An
// application is either a Go application, named by import_path as
// registered in the user's binary, whose deployments entries override the
// options its code declares; or a command application, whose deployments
// each run a program (command) that listens on the port its environment
// names (port_env, default PORT). testdata/app.yaml shows both.
//
// The steps, each pure and each its own function:
//
//	c, err := config.Parse(data)   // schema: unknown fields, types, duplicate keys
//	err = c.Validate()             // values: ranges, names, exclusivity, uniqueness
//	err = c.ValidateResources(nodeTotals) // each replica fits some node
//	c.Defaults()                   // every unset setting filled, Ray's defaults
//	out, err := c.Marshal()        // back to YAML
//
// Parse, Validate and ValidateResources report every problem they find,
// not just the first, in one *Error whose FieldErrors carry a path and a
// line:
//
//	applications[0].deployments[1]: unknown field "num_replica" (line 12); did you mean num_replicas?
//
// errors.Is tells the kind (ErrUnknownField, ErrType, ErrDuplicate,
// ErrConflict, ErrInvalidValue, ErrImpossibleResources, ErrSyntax).
//
// Defaults are Ray's (each Default* constant says where it comes from),
// with one exception: http_options.host defaults to 127.0.0.1, not the
// 0.0.0.0 of Ray's config-file schema, so that nothing is exposed to the
// network unless the file says so (Ray's serve.start defaults to
// 127.0.0.1 as well). A parsed Config keeps what the file left unset as
// nil, which a controller needs: for a Go application it overlays the
// file's options on the code's (Deployment.Overlay) and only then fills
// defaults, as Ray gives options set in the file precedence over the
// code's and the code's over the defaults.
//
// How the rest of Serve uses it: the CLI parses, validates and checks
// resources against the cluster's nodes before it sends the file; the
// controller validates again (a file may come by another path), keeps the
// parsed Config as the goal, fills defaults into a copy per deployment,
// and reconciles: a change of user_config reconfigures a Go deployment's
// replicas in place (a command deployment's restart, with the new value
// in UserConfigEnv), a change of num_replicas or autoscaling_config
// rescales, anything else replaces replicas. Proxies read http_options
// and route by each application's route_prefix to its ingress.
//
// Nothing here is safe for concurrent mutation; a Config is a plain value.
package config
