package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"sluice.local/tests/deploy/brokerflags"
)

// Container ports the image's listeners use (deploy/docker/Dockerfile sets SLUICE_LISTEN,
// SLUICE_RAFT_LISTEN and SLUICE_ADMIN_LISTEN to 0.0.0.0 on these).
const (
	kafkaPort = 9092
	raftPort  = 9093
	adminPort = 9644
)

// imageEnvironment is what the image's ENV sets; a service's environment is added on top.
var imageEnvironment = []brokerflags.Var{
	{Name: "SLUICE_DATA_DIR", Value: "/data"},
	{Name: "SLUICE_LISTEN", Value: "0.0.0.0:9092"},
	{Name: "SLUICE_RAFT_LISTEN", Value: "0.0.0.0:9093"},
	{Name: "SLUICE_ADMIN_LISTEN", Value: "0.0.0.0:9644"},
}

// brokerPath is the broker binary inside the image; the healthcheck must run it.
const brokerPath = "/usr/local/bin/sluice-broker"

// stopGraceMin is the least stop_grace_period accepted: a controlled shutdown waits up to
// 5 s for leaderships to move and 5 s for connections to drain, then closes every log.
const stopGraceMin = 30 * time.Second

// Run loads one project (files merged in order) and checks it; a summary, or the problems.
func Run(files []string, broker string) (string, []string) {
	project, err := load(files)
	if err != nil {
		return "", []string{err.Error()}
	}
	problems := Check(project)
	if broker != "" && len(problems) == 0 {
		for _, name := range brokerNames(project) {
			service := project.Services[name]
			problems = append(problems, brokerflags.Check("service "+name, broker, service.Command, environment(service))...)
			problems = append(problems, checkHealthcheckParses(name, broker, service)...)
		}
	}
	summary := fmt.Sprintf("%d broker(s) loaded with the Compose schema, cross-references checked", len(brokerNames(project)))
	if broker != "" {
		summary += ", settings and healthcheck taken by " + broker
	}
	return summary, problems
}

func load(files []string) (*types.Project, error) {
	var configFiles []types.ConfigFile
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		configFiles = append(configFiles, types.ConfigFile{Filename: file, Content: content})
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(files[0]),
		ConfigFiles: configFiles,
		Environment: types.Mapping{}, // the defaults of ${VAR:-default}, not this shell's
	}
	return loader.LoadWithContext(context.Background(), details, func(options *loader.Options) {
		options.SetProjectName("sluicecheck", true)
	})
}

// brokerNames are the services that run the broker image, sorted.
func brokerNames(project *types.Project) []string {
	var names []string
	for name, service := range project.Services {
		if strings.Contains(service.Image, "sluice-broker") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// environment is what the broker process sees: the image's ENV, then the service's.
func environment(service types.ServiceConfig) []brokerflags.Var {
	values := map[string]string{}
	for _, variable := range imageEnvironment {
		values[variable.Name] = variable.Value
	}
	for name, value := range service.Environment {
		if value != nil {
			values[name] = *value
		}
	}
	var env []brokerflags.Var
	for name, value := range values {
		env = append(env, brokerflags.Var{Name: name, Value: value})
	}
	sort.Slice(env, func(i, j int) bool { return env[i].Name < env[j].Name })
	return env
}

func lookup(env []brokerflags.Var, name string) (string, bool) {
	for _, variable := range env {
		if variable.Name == name {
			return variable.Value, true
		}
	}
	return "", false
}

// Check runs the static cross-reference checks on the broker services of a project.
func Check(project *types.Project) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := brokerNames(project)
	if len(names) == 0 {
		return []string{"no service runs the sluice-broker image"}
	}
	ids := map[int]string{}          // node id -> service
	raftAdvertise := map[int]string{} // node id -> its SLUICE_RAFT_ADVERTISE
	published := map[string]string{} // host_ip:port -> service
	var votersText string
	for _, name := range names {
		service := project.Services[name]
		env := environment(service)
		host := name
		if service.Hostname != "" {
			host = service.Hostname
		}
		idText, _ := lookup(env, "SLUICE_NODE_ID")
		id, err := strconv.Atoi(idText)
		switch {
		case err != nil:
			report("service %s: SLUICE_NODE_ID %q is not a number", name, idText)
		case ids[id] != "":
			report("service %s: node id %d is also %s's", name, id, ids[id])
		default:
			ids[id] = name
			raftAdvertise[id], _ = lookup(env, "SLUICE_RAFT_ADVERTISE")
		}
		voters, _ := lookup(env, "SLUICE_VOTERS")
		if votersText == "" {
			votersText = voters
		} else if voters != votersText {
			report("service %s: SLUICE_VOTERS %q differs from another broker's %q (it must be the same on every node)", name, voters, votersText)
		}
		for _, port := range service.Ports {
			key := port.HostIP + ":" + port.Published
			if other, taken := published[key]; taken {
				report("service %s: host port %s is also published by %s", name, key, other)
			}
			published[key] = name
		}
		checkAdvertise(name, host, service, env, report)
		dataOnVolume := false
		for _, volume := range service.Volumes {
			if volume.Target == "/data" && volume.Type == types.VolumeTypeVolume {
				if _, declared := project.Volumes[volume.Source]; declared {
					dataOnVolume = true
				}
			}
		}
		if !dataOnVolume {
			report("service %s: /data is not a declared named volume", name)
		}
		health := service.HealthCheck
		if health == nil || len(health.Test) < 4 || health.Test[0] != "CMD" || health.Test[1] != brokerPath || health.Test[2] != "probe" || health.Test[3] != "ready" {
			report("service %s: healthcheck must be [CMD, %s, probe, ready, ...] (the image has no shell)", name, brokerPath)
		}
		if service.StopGracePeriod == nil || time.Duration(*service.StopGracePeriod) < stopGraceMin {
			report("service %s: stop_grace_period must be at least %s (controlled shutdown)", name, stopGraceMin)
		}
	}
	checkVoters(votersText, ids, raftAdvertise, project, report)
	return problems
}

// checkAdvertise: a broker advertises its service name on the Kafka port (clients inside the
// network), or a published 127.0.0.1 port mapped to the Kafka port (clients on the host) and
// then replicates over its service name.
func checkAdvertise(name, host string, service types.ServiceConfig, env []brokerflags.Var, report func(string, ...any)) {
	advertise, _ := lookup(env, "SLUICE_ADVERTISE")
	inNetwork := fmt.Sprintf("%s:%d", host, kafkaPort)
	if advertise == inNetwork {
		return
	}
	advertisedHost, advertisedPort, err := net.SplitHostPort(advertise)
	if err != nil {
		report("service %s: SLUICE_ADVERTISE %q is not host:port", name, advertise)
		return
	}
	mapped := false
	for _, port := range service.Ports {
		if port.Target == kafkaPort && port.Published == advertisedPort && port.HostIP == advertisedHost {
			mapped = true
		}
	}
	if !mapped {
		report("service %s: SLUICE_ADVERTISE %q is neither %q nor a published port mapped to %d", name, advertise, inNetwork, kafkaPort)
	}
	if replication, _ := lookup(env, "SLUICE_REPLICATION_ADVERTISE"); replication != inNetwork {
		report("service %s: advertising %q to host clients needs SLUICE_REPLICATION_ADVERTISE=%s for the other brokers", name, advertise, inNetwork)
	}
}

// checkVoters: every voter is a broker service of this project, at its Raft port, and every
// broker is a voter (a broker outside the list cannot join the metadata group yet).
func checkVoters(votersText string, ids map[int]string, raftAdvertise map[int]string, project *types.Project, report func(string, ...any)) {
	listed := map[int]bool{}
	for _, entry := range strings.Split(votersText, ",") {
		idText, address, ok := strings.Cut(strings.TrimSpace(entry), "@")
		id, err := strconv.Atoi(idText)
		if !ok || err != nil {
			report("SLUICE_VOTERS entry %q is not id@host:port", entry)
			continue
		}
		listed[id] = true
		name, known := ids[id]
		if !known {
			report("SLUICE_VOTERS names node %d, which no broker service is", id)
			continue
		}
		host := name
		if hostname := project.Services[name].Hostname; hostname != "" {
			host = hostname
		}
		if want := fmt.Sprintf("%s:%d", host, raftPort); address != want {
			report("SLUICE_VOTERS names node %d at %q, want %q (service %s's Raft listener)", id, address, want, name)
		}
	}
	// A broker outside the list joins as a non-voter: the voters dial it back at its
	// SLUICE_RAFT_ADVERTISE (its Raft listener is 0.0.0.0 in the image).
	for id, name := range ids {
		if listed[id] {
			continue
		}
		host := name
		if hostname := project.Services[name].Hostname; hostname != "" {
			host = hostname
		}
		if want := fmt.Sprintf("%s:%d", host, raftPort); raftAdvertise[id] != want {
			report("service %s (node %d) is not in SLUICE_VOTERS, so it joins as a non-voter and needs SLUICE_RAFT_ADVERTISE=%s (has %q)", name, id, want, raftAdvertise[id])
		}
	}
	if len(listed)%2 == 0 {
		report("SLUICE_VOTERS lists %d voters: an odd number tolerates as many failures with one voter fewer", len(listed))
	}
}

// checkHealthcheckParses runs the healthcheck's arguments with the broker binary against a
// port nothing listens on: it must fail as a probe does (exit 1, "cannot connect"), not as
// a command line the binary does not understand (exit 2).
func checkHealthcheckParses(name, broker string, service types.ServiceConfig) []string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return []string{err.Error()}
	}
	closed := listener.Addr().String()
	listener.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	command := exec.CommandContext(ctx, broker, service.HealthCheck.Test[2:]...)
	command.Env = []string{"PATH=" + os.Getenv("PATH"), "SLUICE_ADMIN_LISTEN=" + closed}
	output, err := command.CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 1 || !strings.Contains(string(output), "cannot connect to "+closed) {
		first, _, _ := strings.Cut(strings.TrimSpace(string(output)), "\n")
		return []string{fmt.Sprintf("service %s: healthcheck %v against a closed port: want exit 1 and \"cannot connect to %s\", got %v: %s", name, service.HealthCheck.Test, closed, err, first)}
	}
	return nil
}
