package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent/activities"
)

var activityHeaderFlag = &cli.StringSliceFlag{
	Name: "activity-header",
	Usage: "send a header with every request of an HTTP activity: 'NAME=Header: value', the value expanded from the environment " +
		"($VAR or ${VAR}; $$ is a $), so 'charge=Authorization: Bearer $TOKEN' keeps the token off the command line (repeatable)",
}

// activityHeaders reads the --activity-header flags into HTTP options by activity name.
// Its errors never show a header value: it may be a secret.
func activityHeaders(c *cli.Context) (map[string][]activities.HTTPOption, error) {
	byName := map[string][]activities.HTTPOption{}
	for i, spec := range c.StringSlice("activity-header") {
		name, header, ok := strings.Cut(spec, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, failf(exitUsage, "--activity-header (number %d): want NAME=Header: value, with the activity's NAME before '='", i+1)
		}
		key, raw, ok := strings.Cut(header, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, failf(exitUsage, "--activity-header for %s: want NAME=Header: value, with ':' after the header's name", name)
		}
		value, err := expandEnv(strings.TrimSpace(raw))
		if err != nil {
			return nil, failf(exitUsage, "--activity-header %s=%s: %v", name, key, err)
		}
		byName[name] = append(byName[name], activities.HTTPHeader(key, value))
	}
	return byName, nil
}

// expandEnv replaces $VAR and ${VAR} in s with the variable's value, and $$ with $. An
// unset variable is an error (a header sent without its token fails later, and less
// clearly).
func expandEnv(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		if name == "$" {
			return "$"
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, "$"+name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}
