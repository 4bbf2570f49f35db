package main

// Loading: every document of every *.yaml file in a directory, decoded strictly into the
// official Kubernetes API types. A field the type does not have (a typo, a wrong indentation,
// a field of another API version) or a value of the wrong type is an error, as it would be
// for `kubectl apply --validate=strict`.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Manifests holds the objects of a directory, with the file each came from.
type Manifests struct {
	StatefulSets []Located[appsv1.StatefulSet]
	Services     []Located[corev1.Service]
	Budgets      []Located[policyv1.PodDisruptionBudget]
}

// Located is an object and where it was read.
type Located[T any] struct {
	File   string
	Object T
}

// documentsMax bounds the documents of one file: a deploy directory has a handful.
const documentsMax = 64

// Load reads every *.yaml and *.yml file of dir. Decoding errors are returned as problems,
// one per document, so that one run reports them all.
func Load(dir string) (*Manifests, []string, error) {
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, nil, err
		}
		files = append(files, matches...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no *.yaml files in %s", dir)
	}
	manifests := &Manifests{}
	var problems []string
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, err
		}
		documents := splitDocuments(text)
		if len(documents) > documentsMax {
			problems = append(problems, fmt.Sprintf("%s: %d documents, more than %d", file, len(documents), documentsMax))
			continue
		}
		for index, document := range documents {
			where := fmt.Sprintf("%s (document %d)", filepath.Base(file), index+1)
			if err := manifests.decode(filepath.Base(file), document); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
	}
	return manifests, problems, nil
}

// splitDocuments cuts a YAML stream at its `---` lines and drops documents that hold only
// comments and blank lines.
func splitDocuments(text []byte) [][]byte {
	var documents [][]byte
	var current bytes.Buffer
	meaningful := false
	flush := func() {
		if meaningful {
			documents = append(documents, append([]byte(nil), current.Bytes()...))
		}
		current.Reset()
		meaningful = false
	}
	for _, line := range strings.SplitAfter(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") {
			flush()
			continue
		}
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			meaningful = true
		}
		current.WriteString(line)
	}
	flush()
	return documents
}

func (m *Manifests) decode(file string, document []byte) error {
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(document, &meta); err != nil {
		return fmt.Errorf("not YAML: %v", err)
	}
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 StatefulSet":
		var object appsv1.StatefulSet
		if err := yaml.UnmarshalStrict(document, &object); err != nil {
			return fmt.Errorf("StatefulSet: %v", err)
		}
		m.StatefulSets = append(m.StatefulSets, Located[appsv1.StatefulSet]{file, object})
	case "v1 Service":
		var object corev1.Service
		if err := yaml.UnmarshalStrict(document, &object); err != nil {
			return fmt.Errorf("Service: %v", err)
		}
		m.Services = append(m.Services, Located[corev1.Service]{file, object})
	case "policy/v1 PodDisruptionBudget":
		var object policyv1.PodDisruptionBudget
		if err := yaml.UnmarshalStrict(document, &object); err != nil {
			return fmt.Errorf("PodDisruptionBudget: %v", err)
		}
		m.Budgets = append(m.Budgets, Located[policyv1.PodDisruptionBudget]{file, object})
	default:
		return fmt.Errorf("apiVersion %q kind %q is not one this check knows (apps/v1 StatefulSet, v1 Service, policy/v1 PodDisruptionBudget)", meta.APIVersion, meta.Kind)
	}
	return nil
}
