package main

// Goal: the manifests in deploy/k8s pass every check, and each kind of mistake the check is
// for makes it fail with a line that names it. Method: the real directory is checked; then
// copies of it, each with one deliberate break (a text replacement that must apply), are
// checked and must report the expected problem. The live cases need the broker binary
// (SLUICE_BROKER_BIN, as scripts/deploy-check.sh sets it) and are skipped without it.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const manifestsDir = "../../../deploy/k8s"

func brokerBinary(t *testing.T) string {
	broker := os.Getenv("SLUICE_BROKER_BIN")
	if broker == "" {
		t.Skip("SLUICE_BROKER_BIN is not set: live checks skipped (scripts/deploy-check.sh sets it)")
	}
	return broker
}

func TestTheManifestsPassStatically(t *testing.T) {
	summary, problems, err := Run(manifestsDir, "")
	if err != nil || len(problems) > 0 {
		t.Fatalf("err %v, problems:\n%s", err, strings.Join(problems, "\n"))
	}
	t.Log(summary)
}

func TestTheManifestsPassAgainstTheBroker(t *testing.T) {
	summary, problems, err := Run(manifestsDir, brokerBinary(t))
	if err != nil || len(problems) > 0 {
		t.Fatalf("err %v, problems:\n%s", err, strings.Join(problems, "\n"))
	}
	t.Log(summary)
}

type breakage struct {
	name, file, old, new, want string
	live                       bool
}

var breakages = []breakage{
	{"misspelled field", "statefulset.yaml", "    readinessProbe:", "    readinesProbe:", `unknown field "readinesProbe"`, false},
	{"field at the wrong level", "statefulset.yaml", "  replicas: 3\n", "  replicas: 3\n  terminationGracePeriodSeconds: 60\n", `unknown field "terminationGracePeriodSeconds"`, false},
	{"key given twice", "services.yaml", "  publishNotReadyAddresses: true\n", "  publishNotReadyAddresses: true\n  publishNotReadyAddresses: false\n", "already set", false},
	{"wrong value type", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: [1]", "PodDisruptionBudget", false},
	{"unknown kind", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudge", "not one this check knows", false},
	{"readiness on the wrong path", "statefulset.yaml", "path: /ready", "path: /readyz", `readinessProbe path "/readyz"`, false},
	{"probe on a port the container lacks", "statefulset.yaml", "path: /health\n              port: admin", "path: /health\n              port: metrics", "livenessProbe port metrics is no container port", false},
	{"service targets a missing port", "services.yaml", "targetPort: raft", "targetPort: rafts", `port "raft" targetPort rafts is no container port`, false},
	{"serviceName of no service", "statefulset.yaml", "serviceName: sluice-peers", "serviceName: sluice-peer", `serviceName "sluice-peer" names no Service`, false},
	{"peer service not headless", "services.yaml", "  clusterIP: None\n", "", "must be a headless Service", false},
	{"ordered start", "statefulset.yaml", "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "want Parallel", false},
	{"Raft address of another pod", "statefulset.yaml", "value: $(POD_NAME).sluice-peers.$(POD_NAMESPACE).svc:9093", "value: sluice-0.sluice-peers.$(POD_NAMESPACE).svc:9093", "SLUICE_RAFT_ADVERTISE", false},
	{"even voter count", "statefulset.yaml", ",2@sluice-2.sluice-peers.$(POD_NAMESPACE).svc:9093", "", "want an odd number", false},
	{"voter on the wrong port", "statefulset.yaml", "2@sluice-2.sluice-peers.$(POD_NAMESPACE).svc:9093", "2@sluice-2.sluice-peers.$(POD_NAMESPACE).svc:9094", "SLUICE_VOTERS names node 2", false},
	{"admin listener off its port", "statefulset.yaml", "value: 0.0.0.0:9644", "value: 0.0.0.0:9645", "SLUICE_ADMIN_LISTEN port 9645", false},
	{"short grace period", "statefulset.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 10", "terminationGracePeriodSeconds", false},
	{"budget allows two down", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", "maxUnavailable 2", false},
	{"data not on the claim", "statefulset.yaml", "mountPath: /data", "mountPath: /var/data", `SLUICE_DATA_DIR "/data" is not the mountPath`, false},
	{"misspelled broker variable", "statefulset.yaml", "name: SLUICE_LOG_FORMAT", "name: SLUICE_LOG_FROMAT", "SLUICE_LOG_FROMAT is no setting of the broker", true},
	{"misspelled broker flag", "statefulset.yaml", "--min-insync-replicas=2", "--min-insync-replica=2", "--print-config refused them", true},
	{"bad flag value", "statefulset.yaml", "--default-replication-factor=3", "--default-replication-factor=three", "--print-config refused them", true},
}

func TestEachBreakageFails(t *testing.T) {
	for _, breakage := range breakages {
		t.Run(breakage.name, func(t *testing.T) {
			broker := ""
			if breakage.live {
				broker = brokerBinary(t)
			}
			dir := t.TempDir()
			entries, err := os.ReadDir(manifestsDir)
			if err != nil {
				t.Fatal(err)
			}
			for _, entry := range entries {
				text, err := os.ReadFile(filepath.Join(manifestsDir, entry.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if entry.Name() == breakage.file {
					if !strings.Contains(string(text), breakage.old) {
						t.Fatalf("%s does not contain %q: the breakage no longer applies", breakage.file, breakage.old)
					}
					text = []byte(strings.Replace(string(text), breakage.old, breakage.new, 1))
				}
				if err := os.WriteFile(filepath.Join(dir, entry.Name()), text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, problems, err := Run(dir, broker)
			if err != nil {
				t.Fatal(err)
			}
			for _, problem := range problems {
				if strings.Contains(problem, breakage.want) {
					return
				}
			}
			t.Fatalf("no problem mentions %q; got:\n%s", breakage.want, strings.Join(problems, "\n"))
		})
	}
}
