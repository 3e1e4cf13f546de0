// kstatus reads Kubernetes objects as JSON (one per line) on stdin and prints, per object,
// what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status, the library Flux and kpt use)
// computes for it: `<kind>/<name> <status> <message>`. The operator's tests use it to check
// that vmnet objects read as Current, InProgress or Failed to GitOps tools.
package main

import (
	"bufio"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	for in.Scan() {
		// Unstructured's own decoding keeps integers as int64, as kstatus expects.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(in.Bytes()); err != nil {
			fmt.Fprintf(os.Stderr, "kstatus: not an object: %v\n", err)
			os.Exit(2)
		}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Printf("%s/%s Error %v\n", u.GetKind(), u.GetName(), err)
			continue
		}
		fmt.Printf("%s/%s %s %s\n", u.GetKind(), u.GetName(), res.Status, res.Message)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(2)
	}
}
