// Command compose-check validates Sluice's Docker Compose files offline (scripts/deploy-check.sh),
// where `docker compose config` needs a Compose plugin this machine may not have:
//
//	go run ./compose [-broker PATH] FILE[,OVERRIDE...] ...   (in tests/deploy)
//
// Each argument is one project: a file, or a file and its overrides joined by commas, merged
// in that order as `docker compose -f A -f B` does.
//
// 1. compose-go (the Compose Specification's reference loader, as Compose v2 itself uses)
// loads it: interpolation of ${VAR:-default}, YAML anchors and merge keys, overrides, and the
// specification's JSON schema (an unknown or misspelled key, a wrong type: an error);
// 2. the cross-references of the Sluice brokers in it (checks.go): node ids, the voter list,
// advertised addresses, published ports, the data volume, the healthcheck, the stop grace;
// 3. with -broker, against the real binary: each broker's command and SLUICE_* environment
// through --print-config (brokerflags), and the healthcheck's arguments parsed by it.
//
// Prints one line per problem and exits 1, or one summary line per project and exits 0.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	broker := flag.String("broker", "", "sluice-broker binary for the live checks (none: static checks only)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: compose-check [-broker PATH] FILE[,OVERRIDE...] ...")
		os.Exit(2)
	}
	failed := 0
	for _, project := range flag.Args() {
		summary, problems := Run(strings.Split(project, ","), *broker)
		for _, problem := range problems {
			fmt.Printf("PROBLEM %s: %s\n", project, problem)
		}
		if len(problems) > 0 {
			failed++
			continue
		}
		fmt.Printf("compose-check: %s: %s\n", project, summary)
	}
	if failed > 0 {
		fmt.Printf("compose-check: %d of %d project(s) failed\n", failed, flag.NArg())
		os.Exit(1)
	}
}
