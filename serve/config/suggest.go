package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// renamed maps Ray Serve's old names of fields to the current ones.
var renamed = map[string]string{
	"max_concurrent_queries":                  "max_ongoing_requests",
	"target_num_ongoing_requests_per_replica": "target_ongoing_requests",
	"upscale_smoothing_factor":                "upscaling_factor",
	"downscale_smoothing_factor":              "downscaling_factor",
	"smoothing_factor":                        "upscaling_factor and downscaling_factor",
	"app_name":                                "name",
}

// rayOnly explains fields of Ray Serve's schema that raygo does not have,
// keyed by the Go type the field was found in and its name.
var rayOnly = map[string]string{
	"Config.logging_config":               "logging is configured per node in raygo",
	"Application.logging_config":          "logging is configured per node in raygo",
	"Deployment.logging_config":           "logging is configured per node in raygo",
	"Config.target_capacity":              "raygo has no target_capacity",
	"Application.host":                    "set host in the top-level http_options",
	"Application.port":                    "set port in the top-level http_options",
	"Application.external_scaler_enabled": "raygo has no external scaler",
	"Application.autoscaling_policy":      "raygo autoscales each deployment by its autoscaling_config",
	"Deployment.placement_group_bundles":  "raygo replicas do not use placement groups",
	"Deployment.placement_group_strategy": "raygo replicas do not use placement groups",
	"Deployment.max_replicas_per_node":    "raygo has no max_replicas_per_node",
	"Deployment.request_router_config":    "raygo routes by power of two choices",
	"Deployment.route_prefix":             "set route_prefix on the application",
	"Deployment.runtime_env":              "set runtime_env on the application (or env, for a command deployment)",
	"Deployment.import_path":              "set import_path on the application",
	"RayActorOptions.runtime_env":         "set runtime_env on the application",
	"RayActorOptions.object_store_memory": "raygo has no object_store_memory option",
	"RayActorOptions.accelerator_type":    "request a custom resource in resources instead",
	"AutoscalingConfig.policy":            "raygo has Ray's default (request-based) policy only",
	"HTTPOptions.ssl_keyfile":             "terminate TLS in front of the proxy",
	"HTTPOptions.ssl_certfile":            "terminate TLS in front of the proxy",
	"HTTPOptions.ssl_keyfile_password":    "terminate TLS in front of the proxy",
	"HTTPOptions.ssl_ca_certs":            "terminate TLS in front of the proxy",
	"HTTPOptions.location":                "use the top-level proxy_location",
	"RuntimeEnv.pip":                      "raygo ships a working_dir and env_vars only; bake dependencies into the image or the command",
	"RuntimeEnv.conda":                    "raygo ships a working_dir and env_vars only; bake dependencies into the image or the command",
	"RuntimeEnv.uv":                       "raygo ships a working_dir and env_vars only; bake dependencies into the image or the command",
	"RuntimeEnv.py_modules":               "raygo ships a working_dir and env_vars only; bake dependencies into the image or the command",
	"RuntimeEnv.container":                "raygo ships a working_dir and env_vars only",
	"RuntimeEnv.image_uri":                "raygo ships a working_dir and env_vars only",
	"Deployment.port":                     "a command deployment gets its port from the environment variable named by port_env",
}

// unknownField reports key k of a mapping read as type t, with the best
// hint it has: Ray's newer name for an old one, why raygo lacks a Ray
// field, or the closest known field.
func unknownField(t reflect.Type, path string, k *yaml.Node, fields map[string]reflect.Type) *FieldError {
	e := &FieldError{Path: path, Line: k.Line, Msg: fmt.Sprintf("unknown field %q", k.Value), Kind: ErrUnknownField}
	if to, ok := renamed[k.Value]; ok {
		if _, here := fields[strings.Fields(to)[0]]; here {
			e.Hint = fmt.Sprintf("Ray renamed it: use %s", to)
			return e
		}
	}
	if why, ok := rayOnly[t.Name()+"."+k.Value]; ok {
		e.Hint = "not supported by raygo: " + why
		return e
	}
	if s := closest(k.Value, slices.Sorted(maps.Keys(fields))); s != "" {
		e.Hint = "did you mean " + s + "?"
	}
	return e
}

// closest returns the candidate nearest to s in edit distance, if near
// enough to be a typo (at most 2 edits, or a third of s), or one that
// contains s or is contained in it; "" when none is.
func closest(s string, candidates []string) string {
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD >= 0 && (bestD <= 2 || bestD <= len(s)/3) {
		return best
	}
	for _, c := range candidates {
		if len(ls) >= 4 && (strings.Contains(c, ls) || strings.Contains(ls, c)) {
			return c
		}
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
