// argocd-health runs an Argo CD custom health check (a Lua script, as in
// `resource.customizations.health.<group>_<kind>` of the argocd-cm ConfigMap) on Kubernetes
// objects given as JSON, one per line, on stdin, and prints per object
// `<kind>/<name> <status> <message>`.
//
//	go run . ../../docs/gitops/health.lua < objects.jsonl
//	kubectl get vmnetwork web -o json | jq -c . | go run . ../../docs/gitops/health.lua
//
// It evaluates the script the way Argo CD's controller does, with the interpreter Argo CD
// embeds (github.com/yuin/gopher-lua):
//   - a new Lua state per object, with only the base, table and package libraries open (a
//     custom health check in argocd-cm runs without the other standard libraries unless
//     `resource.customizations.useOpenLibs.<group>_<kind>` is set; Argo CD adds a reduced
//     `os`, which these scripts do not use and this program does not offer);
//   - the object bound to the global `obj`: JSON objects become tables keyed by strings,
//     arrays tables indexed from 1, numbers (integers as int64, as Kubernetes' unstructured
//     objects hold them) LNumber, strings LString, booleans LBool, null nil;
//   - a time limit of one second per evaluation;
//   - the script's returned value must be a table; its `status` must be one of Healthy,
//     Progressing, Degraded, Suspended, Missing or Unknown, else the result is `Unknown` with
//     Argo CD's message "Lua returned an invalid health status".
//
// A script that fails (a Lua error, a time-out, a value that is not a table) prints `Error`
// and the error instead of a status; Argo CD would show such a resource's health as Unknown.
// Newlines in messages are printed as `\n` so that every object stays on one line.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var statuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT.lua < objects.jsonl")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	for in.Scan() {
		line := bytes.TrimSpace(in.Bytes())
		if len(line) == 0 {
			continue
		}
		obj, err := decode(line)
		if err != nil {
			fmt.Fprintf(os.Stderr, "argocd-health: not an object: %v\n", err)
			os.Exit(2)
		}
		kind, _ := obj["kind"].(string)
		name := ""
		if md, ok := obj["metadata"].(map[string]any); ok {
			name, _ = md["name"].(string)
		}
		status, message, err := health(string(script), obj)
		if err != nil {
			status, message = "Error", err.Error()
		}
		message = strings.ReplaceAll(message, "\n", `\n`)
		fmt.Printf("%s/%s %s %s\n", kind, name, status, message)
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		os.Exit(2)
	}
}

// decode reads one JSON object, keeping integers as int64 (as unstructured objects do).
func decode(line []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a JSON %T, not an object", v)
	}
	return numbers(obj).(map[string]any), nil
}

// numbers turns every json.Number in v into an int64 or, failing that, a float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

// health runs script with obj bound to the global `obj` and returns the status and message
// of the table it returns.
func health(script string, obj map[string]any) (string, string, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true},
			lua.LString(lib.name)); err != nil {
			return "", "", fmt.Errorf("opening the %q library: %w", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("expect table output from Lua script, not %s", L.Get(-1).Type())
	}
	status, err := field(ret, "status")
	if err != nil {
		return "", "", err
	}
	message, err := field(ret, "message")
	if err != nil {
		return "", "", err
	}
	if !statuses[status] {
		return "Unknown", "Lua returned an invalid health status", nil
	}
	return status, message, nil
}

// field is the string at key in t ("" when absent).
func field(t *lua.LTable, key string) (string, error) {
	switch v := t.RawGetString(key).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("the returned %s is a %s, not a string", key, v.Type())
	}
}

// toLua converts a decoded JSON value into the Lua value Argo CD would bind.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, item := range x {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(x))
		for k, item := range x {
			t.RawSetH(lua.LString(k), toLua(L, item))
		}
		return t
	}
	return lua.LNil
}
