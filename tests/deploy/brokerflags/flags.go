// Package brokerflags checks a deploy file's broker settings against the real sluice-broker
// binary: the flags and SLUICE_* variables a container, pod or unit gives it must be ones the
// broker takes. clap alone refuses an unknown flag but silently ignores an unknown variable,
// so the check reads `sluice-broker --print-config`, which names the source of every setting
// ("# flag", "# env SLUICE_X", "# default"), and requires each variable to be the source of one.
package brokerflags

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Var is one environment variable given to the broker.
type Var struct{ Name, Value string }

// runTimeout bounds one --print-config run (it exits at once; a hang is a failure).
const runTimeout = 30 * time.Second

// Check runs `broker ARGS --print-config` with env as its whole environment (plus PATH) and
// returns one problem line per flag or variable the broker does not take, or the first line
// of its refusal. where prefixes each line.
func Check(where, broker string, args []string, env []Var) []string {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	command := exec.CommandContext(ctx, broker, append(append([]string{}, args...), "--print-config")...)
	command.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, variable := range env {
		command.Env = append(command.Env, variable.Name+"="+variable.Value)
	}
	var stderr strings.Builder
	command.Stderr = &stderr
	output, err := command.Output()
	if err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		return []string{fmt.Sprintf("%s: %s --print-config refused them (%v): %s", where, filepath.Base(broker), err, first)}
	}
	sources := map[string]string{} // setting -> "flag", "env SLUICE_X", "default", "file"
	scanner := bufio.NewScanner(strings.NewReader(string(output)))
	for scanner.Scan() {
		key, rest, ok := strings.Cut(scanner.Text(), " = ")
		_, source, commented := strings.Cut(rest, "  # ")
		if ok && commented {
			sources[key] = source
		}
	}
	var problems []string
	if len(sources) == 0 {
		return []string{fmt.Sprintf("%s: %s --print-config printed no settings", where, broker)}
	}
	for _, variable := range env {
		if !strings.HasPrefix(variable.Name, "SLUICE_") {
			continue
		}
		found := false
		for _, source := range sources {
			found = found || source == "env "+variable.Name
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s: %s is no setting of the broker (--print-config does not take it from the environment)", where, variable.Name))
		}
	}
	for _, arg := range args {
		if !strings.HasPrefix(arg, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if sources[name] != "flag" {
			problems = append(problems, fmt.Sprintf("%s: flag --%s is not a setting --print-config shows as given by flag", where, name))
		}
	}
	return problems
}
