package chart

import (
	"os"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
)

// freeForm are the values whose content is a Kubernetes type, documented by Kubernetes, so
// their nested keys need no comment of their own.
var freeForm = map[string]bool{"resources": true, "tolerations": true}

func TestEveryValueDocumented(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse values.yaml: %v", err)
	}
	if len(doc.Content) != 1 {
		t.Fatalf("values.yaml holds %d documents, want 1", len(doc.Content))
	}

	var undocumented []string
	var walk func(node *yamlv3.Node, path string)
	walk = func(node *yamlv3.Node, path string) {
		if node.Kind != yamlv3.MappingNode {
			return
		}
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i], node.Content[i+1]
			keyPath := strings.TrimPrefix(path+"."+key.Value, ".")
			if strings.TrimSpace(key.HeadComment) == "" {
				undocumented = append(undocumented, keyPath)
			}
			if !freeForm[key.Value] {
				walk(value, keyPath)
			}
		}
	}
	walk(doc.Content[0], "")

	for _, key := range undocumented {
		t.Errorf("values.yaml: %s has no comment above it", key)
	}
}
