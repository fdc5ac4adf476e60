// A small web server: GET / answers with the request path and a counter.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"sync/atomic"
)

var hits atomic.Int64

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-check" {
		fmt.Println("ok")
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		fmt.Fprintf(w, "%s #%d\n", r.URL.Path, n)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
