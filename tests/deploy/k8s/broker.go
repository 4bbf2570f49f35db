package main

// Live checks against the real broker binary: every flag and SLUICE_* variable a pod sets is
// one the broker takes (brokerflags), and the probe paths are ones its admin listener answers.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"sluice.local/tests/deploy/brokerflags"
)

// brokerTimeout bounds each wait on the broker: --print-config, its /health, its /ready.
const brokerTimeout = 30 * time.Second

// CheckFlags requires every flag and SLUICE_* variable of the pod to be a broker setting.
func CheckFlags(broker string, pod Pod) []string {
	var env []brokerflags.Var
	for _, variable := range pod.Env {
		env = append(env, brokerflags.Var{Name: variable.Name, Value: variable.Value})
	}
	return brokerflags.Check(fmt.Sprintf("pod %d settings", pod.Ordinal), broker, pod.Args, env)
}

// CheckServedPaths starts the broker alone on free ports of 127.0.0.1 with node id 0 (an
// ordinal, as in the StatefulSet) and requires /health to answer 200 and /ready to reach 200.
func CheckServedPaths(broker string) []string {
	dir, err := os.MkdirTemp("", "sluice-k8s-check")
	if err != nil {
		return []string{err.Error()}
	}
	defer os.RemoveAll(dir)
	ports, err := freePorts(3)
	if err != nil {
		return []string{err.Error()}
	}
	admin := fmt.Sprintf("127.0.0.1:%d", ports[2])
	log, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return []string{err.Error()}
	}
	defer log.Close()
	command := exec.Command(broker, "--node-id", "0", "--data-dir", filepath.Join(dir, "data"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--admin-listen", admin)
	command.Env = []string{"PATH=" + os.Getenv("PATH"), "RUST_LOG=warn"}
	command.Stderr = log
	if err := command.Start(); err != nil {
		return []string{fmt.Sprintf("cannot start %s: %v", broker, err)}
	}
	exited := make(chan error, 1)
	go func() { exited <- command.Wait() }()
	defer func() {
		_ = command.Process.Kill()
		<-exited
	}()
	var problems []string
	for _, path := range []string{healthPath, readyPath} {
		if status := waitFor200(admin, path, exited); status != "" {
			text, _ := os.ReadFile(log.Name())
			problems = append(problems, fmt.Sprintf("broker %s: GET %s: %s; its log:\n%s", broker, path, status, text))
		}
	}
	return problems
}

// waitFor200 polls http://address/path until it answers 200; "" then, else what it last got.
func waitFor200(address, path string, exited <-chan error) string {
	client := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(brokerTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Sprintf("the broker exited (%v)", err)
		default:
		}
		response, err := client.Get("http://" + address + path)
		if err == nil {
			response.Body.Close()
			if response.StatusCode == http.StatusOK {
				return ""
			}
			last = response.Status
			if response.StatusCode == http.StatusNotFound || response.StatusCode == http.StatusMethodNotAllowed {
				return last // not served at all: waiting will not help
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprintf("not 200 within %s (last: %s)", brokerTimeout, last)
}

func freePorts(count int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, listener := range listeners {
			listener.Close()
		}
	}()
	var ports []int
	for range count {
		listener, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, listener)
		ports = append(ports, listener.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
