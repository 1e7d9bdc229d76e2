package cli

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// clientPackages are the only samsa packages the command line may import:
// client-side code that talks the Kafka protocol (DESIGN.md: cli imports
// no broker internals; cmd/samsa injects the node runner).
var clientPackages = map[string]bool{"samsa/internal/perf": true}

func TestCLIImportsNoBrokerInternals(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue // in-process test nodes may use the server
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "samsa/") && !clientPackages[p] {
				t.Errorf("%s imports %s: the CLI is a Kafka client; let cmd/samsa inject what it needs", f, p)
			}
		}
	}
}
