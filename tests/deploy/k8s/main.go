// Command k8s-check validates Sluice's Kubernetes manifests offline (scripts/deploy-check.sh):
//
//	go run ./k8s [-broker PATH] DIR   (in tests/deploy)
//
// 1. every document of DIR/*.yaml decoded strictly into the k8s.io/api types (an unknown or
// misspelled field, a wrong type: an error), as kubeconform would with the API's schemas,
// which cannot be downloaded here;
// 2. the cross-references (checks.go): selectors, the headless service, ports, probe paths,
// the per-pod environment (broker id = ordinal, advertised name, voter list);
// 3. with -broker, against the real binary (broker.go): each pod's flags and SLUICE_*
// variables through --print-config, and the probe paths served.
//
// Prints one line per problem and exits 1, or one summary line and exits 0. With -pod-env N it
// prints pod N's resolved environment and arguments instead (deploy/k8s/netns-test.sh).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	broker := flag.String("broker", "", "sluice-broker binary for the live checks (none: static checks only)")
	podEnv := flag.Int("pod-env", -1, "print pod N's resolved environment (ENV NAME=VALUE) and arguments (ARG X), one per line, instead of checking")
	flag.Parse()
	if *podEnv >= 0 && flag.NArg() == 1 {
		if err := printPod(flag.Arg(0), *podEnv); err != nil {
			fmt.Fprintln(os.Stderr, "k8s-check:", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: k8s-check [-broker PATH] DIR | k8s-check -pod-env N DIR")
		os.Exit(2)
	}
	summary, problems, err := Run(flag.Arg(0), *broker)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s-check:", err)
		os.Exit(1)
	}
	for _, problem := range problems {
		fmt.Println("PROBLEM", problem)
	}
	if len(problems) > 0 {
		fmt.Printf("k8s-check: %d problem(s) in %s\n", len(problems), flag.Arg(0))
		os.Exit(1)
	}
	fmt.Println("k8s-check:", summary)
}

// Run loads dir and runs every check; broker "" skips the live ones.
func Run(dir, broker string) (string, []string, error) {
	manifests, problems, err := Load(dir)
	if err != nil {
		return "", nil, err
	}
	if len(problems) > 0 {
		return "", problems, nil // the cross-references of a half-decoded set say nothing
	}
	problems = Check(manifests)
	objects := len(manifests.StatefulSets) + len(manifests.Services) + len(manifests.Budgets)
	summary := fmt.Sprintf("%d objects in %s decoded strictly, cross-references checked", objects, dir)
	if broker == "" || len(problems) > 0 {
		return summary + " (no live checks)", problems, nil
	}
	set := manifests.StatefulSets[0].Object
	replicas := int(*set.Spec.Replicas)
	for ordinal := 0; ordinal < replicas; ordinal++ {
		pod, err := ResolvePod(set, ordinal)
		if err != nil {
			return "", nil, err
		}
		problems = append(problems, CheckFlags(broker, pod)...)
	}
	problems = append(problems, CheckServedPaths(broker)...)
	return fmt.Sprintf("%s; %d pods' settings taken by %s --print-config; %s and %s answer 200", summary, replicas, broker, healthPath, readyPath), problems, nil
}

// printPod prints what pod `ordinal` of the StatefulSet in dir runs with, for
// deploy/k8s/netns-test.sh: its environment as the kubelet resolves it (namespace ns-check),
// then its arguments.
func printPod(dir string, ordinal int) error {
	manifests, problems, err := Load(dir)
	if err != nil {
		return err
	}
	if len(problems) > 0 || len(manifests.StatefulSets) != 1 {
		return fmt.Errorf("%s does not hold one valid StatefulSet: %v", dir, problems)
	}
	pod, err := ResolvePod(manifests.StatefulSets[0].Object, ordinal)
	if err != nil {
		return err
	}
	for _, variable := range pod.Env {
		fmt.Printf("ENV %s=%s\n", variable.Name, variable.Value)
	}
	for _, arg := range pod.Args {
		fmt.Printf("ARG %s\n", arg)
	}
	return nil
}
