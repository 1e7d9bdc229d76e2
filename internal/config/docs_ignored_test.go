package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/config.md lists every key accepted but ignored (issue 9, defect
// 10): the broker keys marked ignored, and the topic configs whose broker
// synonym is ignored. The list and keys.go must agree both ways.
func TestConfigDocsListIgnoredKeys(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const heading = "## Keys accepted but ignored\n"
	i := strings.Index(doc, heading)
	if i < 0 {
		t.Fatalf("docs/config.md has no %q section", strings.TrimSpace(heading))
	}
	section := doc[i+len(heading):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	// Table rows: | `key` [(topic)] | why |
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9.]+)`( \\(topic\\))? \\|")
	var listed []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		name := m[1]
		if m[2] != "" {
			name = "topic:" + name
		}
		listed = append(listed, name)
	}

	var want []string
	for name, k := range brokerKeys {
		if k.ignored {
			want = append(want, name)
		}
	}
	for name, k := range topicKeys {
		if k.ignored || (k.broker != "" && brokerKeys[k.broker].ignored) {
			want = append(want, "topic:"+name)
		}
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("docs/config.md lists as ignored\n  %v\nkeys.go ignores\n  %v", listed, want)
	}
}
