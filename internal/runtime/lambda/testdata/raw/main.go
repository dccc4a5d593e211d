// Command raw is a custom runtime written against the Runtime API with the
// standard library alone, so tests see exactly what Stoke sends: it answers
// each event with the /next headers it got. With RAW_INIT_ERROR set it posts
// /runtime/init/error instead and exits, as runtimes do when a handler
// cannot be loaded.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	base := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
	if os.Getenv("RAW_INIT_ERROR") != "" {
		req, _ := http.NewRequest("POST", base+"/init/error",
			bytes.NewReader([]byte(`{"errorMessage":"Cannot find module 'app'","errorType":"Runtime.ImportModuleError"}`)))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ImportModuleError")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("init error posted:", res.Status)
		os.Exit(1)
	}
	for {
		res, err := http.Get(base + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		event, _ := io.ReadAll(res.Body)
		res.Body.Close()
		out, _ := json.Marshal(map[string]any{"headers": res.Header, "event": json.RawMessage(event)})
		id := res.Header.Get("Lambda-Runtime-Aws-Request-Id")
		res, err = http.Post(base+"/invocation/"+id+"/response", "application/json", bytes.NewReader(out))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
