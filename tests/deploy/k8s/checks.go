package main

// Cross-reference checks: what the API server would accept but a Sluice cluster would not
// survive — a service that selects no pod, a probe on a port the container does not expose,
// a voter list that does not name the pods, a broker id that is not the ordinal.

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Paths the broker's admin listener serves (crates/broker/src/admin_http.rs): readiness must
// ask /ready and liveness /health. The live check (broker.go) asks the real binary too.
const (
	readyPath  = "/ready"
	healthPath = "/health"
)

// gracePeriodMinSeconds is the least terminationGracePeriodSeconds accepted: a controlled
// shutdown waits up to 5 s for leaderships to move and up to 5 s for connections to drain
// (CONTROLLED_SHUTDOWN_TIMEOUT_MS, SHUTDOWN_GRACE_MS), then closes every log; Kubernetes'
// default of 30 s is the floor.
const gracePeriodMinSeconds = 30

// checkNamespace stands in for the pod's namespace when env values are resolved.
const checkNamespace = "ns-check"

// podIndexLabel is the label the StatefulSet controller puts on each pod: its ordinal.
const podIndexLabel = "apps.kubernetes.io/pod-index"

// Pod is one StatefulSet pod as the check sees it: its ordinal and its container's
// environment with the downward API and $(VAR) references resolved.
type Pod struct {
	Ordinal int
	Env     []EnvVar
	Args    []string
}

// EnvVar is one resolved variable, in the container's order.
type EnvVar struct{ Name, Value string }

// Lookup returns a variable's value.
func (p Pod) Lookup(name string) (string, bool) {
	for _, variable := range p.Env {
		if variable.Name == name {
			return variable.Value, true
		}
	}
	return "", false
}

// Check runs every static check; the problems found, each one line.
func Check(m *Manifests) []string {
	var problems []string
	report := func(where, format string, args ...any) {
		problems = append(problems, where+": "+fmt.Sprintf(format, args...))
	}
	if len(m.StatefulSets) != 1 {
		report("deploy/k8s", "%d StatefulSets, want exactly 1", len(m.StatefulSets))
		return problems
	}
	located := m.StatefulSets[0]
	set := located.Object
	where := located.File + ": StatefulSet " + set.Name
	podLabels := set.Spec.Template.Labels

	replicas := 1
	if set.Spec.Replicas != nil {
		replicas = int(*set.Spec.Replicas)
	}
	if replicas < 3 || replicas%2 == 0 {
		report(where, "replicas %d: want an odd number, at least 3 (a Raft majority survives one loss)", replicas)
	}
	if set.Spec.Selector == nil || !selects(set.Spec.Selector.MatchLabels, podLabels) || len(set.Spec.Selector.MatchExpressions) > 0 {
		report(where, "spec.selector.matchLabels must select the pod template's labels %v", podLabels)
	}
	if set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		report(where, "podManagementPolicy %q: want Parallel (no broker is ready before a quorum of voters runs, so OrderedReady never starts the second pod)", set.Spec.PodManagementPolicy)
	}
	grace := set.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace < gracePeriodMinSeconds {
		report(where, "terminationGracePeriodSeconds must be at least %d (controlled shutdown)", gracePeriodMinSeconds)
	}
	checkPeerService(m, set, podLabels, report, where)

	if len(set.Spec.Template.Spec.Containers) != 1 {
		report(where, "%d containers, want 1 (the broker)", len(set.Spec.Template.Spec.Containers))
		return problems
	}
	container := set.Spec.Template.Spec.Containers[0]
	where = where + " container " + container.Name
	ports := map[string]int32{}
	for _, port := range container.Ports {
		if port.Name == "" || len(port.Name) > 15 {
			report(where, "container port %d needs a name of 1 to 15 characters", port.ContainerPort)
		}
		if _, twice := ports[port.Name]; twice {
			report(where, "container port name %q used twice", port.Name)
		}
		ports[port.Name] = port.ContainerPort
	}
	for _, name := range []string{"kafka", "raft", "admin"} {
		if _, ok := ports[name]; !ok {
			report(where, "no container port named %q", name)
		}
	}
	checkProbe(where, "readinessProbe", container.ReadinessProbe, readyPath, container, report)
	checkProbe(where, "livenessProbe", container.LivenessProbe, healthPath, container, report)
	if container.Resources.Requests.Cpu().IsZero() || container.Resources.Requests.Memory().IsZero() {
		report(where, "resources.requests must set cpu and memory")
	}
	if limit := container.Resources.Limits.Memory(); !limit.IsZero() && limit.Cmp(*container.Resources.Requests.Memory()) < 0 {
		report(where, "the memory limit is below the request")
	}
	checkVolumes(set, container, report, where)

	for ordinal := 0; ordinal < replicas; ordinal++ {
		pod, err := ResolvePod(set, ordinal)
		if err != nil {
			report(where, "pod %d: %v", ordinal, err)
			continue
		}
		checkPodEnv(set, pod, ports, replicas, report, fmt.Sprintf("%s pod %s-%d", where, set.Name, ordinal))
	}
	for _, service := range m.Services {
		checkServicePorts(service.File+": Service "+service.Object.Name, service.Object, container, podLabels, report)
	}
	if len(m.Budgets) != 1 {
		report("deploy/k8s", "%d PodDisruptionBudgets, want 1", len(m.Budgets))
	}
	for _, budget := range m.Budgets {
		where := budget.File + ": PodDisruptionBudget " + budget.Object.Name
		spec := budget.Object.Spec
		if spec.Selector == nil || !selects(spec.Selector.MatchLabels, podLabels) {
			report(where, "selector must select the broker pods %v", podLabels)
		}
		majority := replicas/2 + 1
		switch {
		case spec.MaxUnavailable != nil && spec.MinAvailable == nil:
			if spec.MaxUnavailable.Type != intstr.Int || spec.MaxUnavailable.IntValue() != 1 {
				report(where, "maxUnavailable %s: want 1 (two brokers down stop acks=all writes at min.insync.replicas 2)", spec.MaxUnavailable.String())
			}
		case spec.MinAvailable != nil && spec.MaxUnavailable == nil:
			if spec.MinAvailable.Type != intstr.Int || spec.MinAvailable.IntValue() < replicas-1 || spec.MinAvailable.IntValue() < majority {
				report(where, "minAvailable %s: want %d", spec.MinAvailable.String(), replicas-1)
			}
		default:
			report(where, "set exactly one of maxUnavailable and minAvailable")
		}
	}
	return problems
}

func checkPeerService(m *Manifests, set appsv1.StatefulSet, podLabels map[string]string, report func(string, string, ...any), where string) {
	for _, service := range m.Services {
		if service.Object.Name != set.Spec.ServiceName {
			continue
		}
		spec := service.Object.Spec
		if spec.ClusterIP != corev1.ClusterIPNone {
			report(where, "serviceName %q must be a headless Service (clusterIP: None): pods get their DNS names from it", set.Spec.ServiceName)
		}
		if !spec.PublishNotReadyAddresses {
			report(where, "Service %q needs publishNotReadyAddresses: true (voters must resolve each other before any is ready)", set.Spec.ServiceName)
		}
		return
	}
	report(where, "serviceName %q names no Service in this directory", set.Spec.ServiceName)
}

// checkProbe requires an httpGet probe of path on the container's admin port.
func checkProbe(where, field string, probe *corev1.Probe, path string, container corev1.Container, report func(string, string, ...any)) {
	if probe == nil || probe.HTTPGet == nil {
		report(where, "%s must be an httpGet probe of %s", field, path)
		return
	}
	if probe.HTTPGet.Path != path {
		report(where, "%s path %q: want %q", field, probe.HTTPGet.Path, path)
	}
	port, ok := containerPort(container, probe.HTTPGet.Port)
	if !ok {
		report(where, "%s port %s is no container port", field, probe.HTTPGet.Port.String())
	} else if port.Name != "admin" {
		report(where, "%s port %s is not the admin port", field, probe.HTTPGet.Port.String())
	}
}

func checkVolumes(set appsv1.StatefulSet, container corev1.Container, report func(string, string, ...any), where string) {
	claims := map[string]bool{}
	for _, template := range set.Spec.VolumeClaimTemplates {
		claims[template.Name] = true
		if _, ok := template.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			report(where, "volumeClaimTemplate %q requests no storage", template.Name)
		}
	}
	volumes := map[string]bool{}
	for _, volume := range set.Spec.Template.Spec.Volumes {
		volumes[volume.Name] = true
	}
	dataDir := ""
	for _, variable := range container.Env {
		if variable.Name == "SLUICE_DATA_DIR" {
			dataDir = variable.Value
		}
	}
	dataOnClaim := false
	for _, mount := range container.VolumeMounts {
		if !claims[mount.Name] && !volumes[mount.Name] {
			report(where, "volumeMount %q names no volume or volumeClaimTemplate", mount.Name)
		}
		if claims[mount.Name] && mount.MountPath == dataDir {
			dataOnClaim = true
		}
	}
	if !dataOnClaim {
		report(where, "SLUICE_DATA_DIR %q is not the mountPath of a volumeClaimTemplate", dataDir)
	}
}

// checkServicePorts requires the service to select the broker pods and each port's
// targetPort to be a container port.
func checkServicePorts(where string, service corev1.Service, container corev1.Container, podLabels map[string]string, report func(string, string, ...any)) {
	if len(service.Spec.Selector) == 0 || !selects(service.Spec.Selector, podLabels) {
		report(where, "selector %v does not select the broker pods %v", service.Spec.Selector, podLabels)
	}
	if len(service.Spec.Ports) == 0 {
		report(where, "no ports")
	}
	for _, port := range service.Spec.Ports {
		target := port.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(port.Port)
		}
		if _, ok := containerPort(container, target); !ok {
			report(where, "port %q targetPort %s is no container port", port.Name, target.String())
		}
	}
}

var reference = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// ResolvePod gives pod `ordinal` its environment as the kubelet would: downward-API fields
// (name, namespace, the pod-index label) and $(VAR) references to variables defined before.
func ResolvePod(set appsv1.StatefulSet, ordinal int) (Pod, error) {
	container := set.Spec.Template.Spec.Containers[0]
	pod := Pod{Ordinal: ordinal}
	podName := fmt.Sprintf("%s-%d", set.Name, ordinal)
	defined := map[string]string{}
	expand := func(text string) string {
		return reference.ReplaceAllStringFunc(text, func(match string) string {
			name := reference.FindStringSubmatch(match)[1]
			if value, ok := defined[name]; ok {
				return value
			}
			return match // the kubelet leaves an unknown reference as it is
		})
	}
	for _, variable := range container.Env {
		value := expand(variable.Value)
		if source := variable.ValueFrom; source != nil {
			if source.FieldRef == nil {
				return pod, fmt.Errorf("env %s: only fieldRef sources are checked", variable.Name)
			}
			switch path := source.FieldRef.FieldPath; path {
			case "metadata.name":
				value = podName
			case "metadata.namespace":
				value = checkNamespace
			case "metadata.labels['" + podIndexLabel + "']":
				value = strconv.Itoa(ordinal)
			default:
				return pod, fmt.Errorf("env %s: fieldRef %q is not one this check resolves", variable.Name, path)
			}
		}
		if strings.Contains(value, "$(") {
			return pod, fmt.Errorf("env %s: unresolved reference in %q (defined later, or not at all)", variable.Name, value)
		}
		defined[variable.Name] = value
		pod.Env = append(pod.Env, EnvVar{variable.Name, value})
	}
	for _, arg := range append(append([]string{}, container.Command...), container.Args...) {
		pod.Args = append(pod.Args, expand(arg))
	}
	return pod, nil
}

// checkPodEnv checks one pod's resolved settings against the ports, the headless service and
// the other pods.
func checkPodEnv(set appsv1.StatefulSet, pod Pod, ports map[string]int32, replicas int, report func(string, string, ...any), where string) {
	get := func(name string) string {
		value, ok := pod.Lookup(name)
		if !ok {
			report(where, "%s is not set", name)
		}
		return value
	}
	peerHost := func(ordinal int) string {
		return fmt.Sprintf("%s-%d.%s.%s.svc", set.Name, ordinal, set.Spec.ServiceName, checkNamespace)
	}
	if id := get("SLUICE_NODE_ID"); id != strconv.Itoa(pod.Ordinal) {
		report(where, "SLUICE_NODE_ID is %q, want the ordinal %d (the voter list names pods by ordinal)", id, pod.Ordinal)
	}
	for name, port := range map[string]string{"SLUICE_LISTEN": "kafka", "SLUICE_RAFT_LISTEN": "raft", "SLUICE_ADMIN_LISTEN": "admin"} {
		value, ok := pod.Lookup(name)
		if !ok {
			report(where, "%s is not set", name)
			continue
		}
		host, listenPort, err := net.SplitHostPort(value)
		if err != nil || net.ParseIP(host) == nil {
			report(where, "%s %q is not an IP:port", name, value)
			continue
		}
		if listenPort != strconv.Itoa(int(ports[port])) {
			report(where, "%s port %s is not the %q container port %d", name, listenPort, port, ports[port])
		}
	}
	want := fmt.Sprintf("%s:%d", peerHost(pod.Ordinal), ports["kafka"])
	if advertise := get("SLUICE_ADVERTISE"); advertise != want {
		report(where, "SLUICE_ADVERTISE %q, want %q (the pod's name under the headless service)", advertise, want)
	}
	voters := get("SLUICE_VOTERS")
	seen := map[int]bool{}
	for _, entry := range strings.Split(voters, ",") {
		id, address, ok := strings.Cut(strings.TrimSpace(entry), "@")
		ordinal, err := strconv.Atoi(id)
		if !ok || err != nil {
			report(where, "SLUICE_VOTERS entry %q is not id@host:port", entry)
			continue
		}
		if ordinal < 0 || ordinal >= replicas || seen[ordinal] {
			report(where, "SLUICE_VOTERS names node %d: want distinct ordinals of 0..%d", ordinal, replicas-1)
			continue
		}
		seen[ordinal] = true
		if want := fmt.Sprintf("%s:%d", peerHost(ordinal), ports["raft"]); address != want {
			report(where, "SLUICE_VOTERS names node %d at %q, want %q", ordinal, address, want)
		}
	}
	if len(seen) == 0 || len(seen)%2 == 0 {
		report(where, "SLUICE_VOTERS names %d voters: want an odd number (3 or 5)", len(seen))
	}
	// A pod outside the voter list (a scaled-up StatefulSet) joins as a non-voting member: the
	// voters dial it back at SLUICE_RAFT_ADVERTISE, its own name under the headless service.
	// Every pod shares the template, so every pod must get its own name there.
	wantRaft := fmt.Sprintf("%s:%d", peerHost(pod.Ordinal), ports["raft"])
	if raftAdvertise, _ := pod.Lookup("SLUICE_RAFT_ADVERTISE"); raftAdvertise != wantRaft {
		report(where, "SLUICE_RAFT_ADVERTISE %q, want %q (a pod beyond the voters joins as a non-voter at that address)", raftAdvertise, wantRaft)
	}
}

func containerPort(container corev1.Container, port intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, candidate := range container.Ports {
		if (port.Type == intstr.String && candidate.Name == port.StrVal) || (port.Type == intstr.Int && candidate.ContainerPort == port.IntVal) {
			return candidate, true
		}
	}
	return corev1.ContainerPort{}, false
}

// selects reports whether every key of selector has its value in labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for key, value := range selector {
		if labels[key] != value {
			return false
		}
	}
	return true
}
