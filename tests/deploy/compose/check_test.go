package main

// Goal: the compose files in deploy/docker pass, and each kind of mistake the check is for
// makes it fail with a line that names it. Method: the real files are checked; then copies,
// each with one deliberate break (a text replacement that must apply), must report the
// expected problem. The live cases need the broker binary (SLUICE_BROKER_BIN, as
// scripts/deploy-check.sh sets it) and are skipped without it.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const dockerDir = "../../../deploy/docker"

// projects are the file sets the repository documents.
var projects = [][]string{
	{"compose.yml"},
	{"compose.yml", "compose.host-clients.yml"},
	{"compose.5-nodes.yml"},
}

func brokerBinary(t *testing.T) string {
	broker := os.Getenv("SLUICE_BROKER_BIN")
	if broker == "" {
		t.Skip("SLUICE_BROKER_BIN is not set: live checks skipped (scripts/deploy-check.sh sets it)")
	}
	return broker
}

func paths(dir string, files []string) []string {
	var out []string
	for _, file := range files {
		out = append(out, filepath.Join(dir, file))
	}
	return out
}

func TestTheComposeFilesPass(t *testing.T) {
	broker := os.Getenv("SLUICE_BROKER_BIN")
	for _, files := range projects {
		summary, problems := Run(paths(dockerDir, files), broker)
		if len(problems) > 0 {
			t.Fatalf("%v:\n%s", files, strings.Join(problems, "\n"))
		}
		t.Logf("%v: %s", files, summary)
	}
}

type breakage struct {
	name     string
	project  []string
	file     string
	old, new string
	want     string
	live     bool
}

var breakages = []breakage{
	{"misspelled key", projects[0], "compose.yml", "stop_grace_period: 60s", "stop_grace_perod: 60s", "stop_grace_perod", false},
	{"wrong value type", projects[0], "compose.yml", "retries: 3", "retries: three", "retries", false},
	{"undeclared volume", projects[2], "compose.5-nodes.yml", "  sluice-5-data:\n", "", "sluice-5-data", false},
	{"node id twice", projects[2], "compose.5-nodes.yml", `SLUICE_NODE_ID: "4"`, `SLUICE_NODE_ID: "3"`, "node id 3 is also", false},
	{"voter on the wrong port", projects[0], "compose.yml", "2@sluice-2:9093", "2@sluice-2:9094", `SLUICE_VOTERS names node 2 at "sluice-2:9094"`, false},
	{"non-voter without its Raft address", projects[2], "compose.5-nodes.yml", "      SLUICE_RAFT_ADVERTISE: sluice-5:9093\n", "", "needs SLUICE_RAFT_ADVERTISE=sluice-5:9093", false},
	{"even voter count", projects[2], "compose.5-nodes.yml", "3@sluice-3:9093", "3@sluice-3:9093,4@sluice-4:9093", "an odd number", false},
	{"advertised name of another broker", projects[0], "compose.yml", "SLUICE_ADVERTISE: sluice-3:9092", "SLUICE_ADVERTISE: sluice-2:9092", `SLUICE_ADVERTISE "sluice-2:9092"`, false},
	{"host clients without replication address", projects[1], "compose.host-clients.yml", "      SLUICE_REPLICATION_ADVERTISE: sluice-2:9092\n", "", "needs SLUICE_REPLICATION_ADVERTISE=sluice-2:9092", false},
	{"admin port published twice", projects[2], "compose.5-nodes.yml", "SLUICE_ADMIN_PORT_5:-19648", "SLUICE_ADMIN_PORT_5:-19647", "host port 127.0.0.1:19647 is also published", false},
	{"healthcheck with a shell", projects[0], "compose.yml", `test: ["CMD", "/usr/local/bin/sluice-broker", "probe", "ready", "--timeout-ms", "2000"]`, `test: ["CMD-SHELL", "curl -f localhost:9644/ready"]`, "healthcheck must be", false},
	{"misspelled broker variable", projects[0], "compose.yml", "SLUICE_VOTERS:", "SLUICE_VOTER:", `SLUICE_VOTERS entry "" is not id@host:port`, false},
	{"unknown broker variable", projects[0], "compose.yml", `      SLUICE_NODE_ID: "2"`, "      SLUICE_NODE_ID: \"2\"\n      SLUICE_ADVERTISED_HOST: sluice-2", "SLUICE_ADVERTISED_HOST is no setting of the broker", true},
	{"misspelled broker flag", projects[0], "compose.yml", "--min-insync-replicas=2", "--min-insync-replica=2", "--print-config refused them", true},
	{"healthcheck the broker does not parse", projects[0], "compose.yml", `"probe", "ready", "--timeout-ms", "2000"`, `"probe", "ready", "--timeout", "2000"`, "healthcheck [CMD", true},
}

func TestEachBreakageFails(t *testing.T) {
	for _, breakage := range breakages {
		t.Run(breakage.name, func(t *testing.T) {
			broker := ""
			if breakage.live {
				broker = brokerBinary(t)
			}
			dir := t.TempDir()
			for _, file := range breakage.project {
				text, err := os.ReadFile(filepath.Join(dockerDir, file))
				if err != nil {
					t.Fatal(err)
				}
				if file == breakage.file {
					if !strings.Contains(string(text), breakage.old) {
						t.Fatalf("%s does not contain %q: the breakage no longer applies", file, breakage.old)
					}
					text = []byte(strings.Replace(string(text), breakage.old, breakage.new, 1))
				}
				if err := os.WriteFile(filepath.Join(dir, file), text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, problems := Run(paths(dir, breakage.project), broker)
			for _, problem := range problems {
				if strings.Contains(problem, breakage.want) {
					return
				}
			}
			t.Fatalf("no problem mentions %q; got:\n%s", breakage.want, strings.Join(problems, "\n"))
		})
	}
}
