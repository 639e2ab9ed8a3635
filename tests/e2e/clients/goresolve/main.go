// goresolve: Go's pure resolver (net.Resolver{PreferGo: true}), as a CGO_ENABLED=0 Go
// binary in a pod uses it, reading the pod's /etc/resolv.conf. Built by tests/e2e/clients.sh.
//
//	goresolve host NAME                LookupHost: one address a line
//	goresolve srv SERVICE PROTO NAME   LookupSRV: "priority weight port target" a line
//	goresolve addr IP                  LookupAddr: one name a line
//
// On an error it prints "error: ..." and exits 1.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	r := &net.Resolver{PreferGo: true}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var lines []string
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "host":
		lines, err = r.LookupHost(ctx, os.Args[2])
	case len(os.Args) == 5 && os.Args[1] == "srv":
		var srvs []*net.SRV
		_, srvs, err = r.LookupSRV(ctx, os.Args[2], os.Args[3], os.Args[4])
		for _, s := range srvs {
			lines = append(lines, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
		}
	case len(os.Args) == 3 && os.Args[1] == "addr":
		lines, err = r.LookupAddr(ctx, os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "usage: goresolve host NAME | srv SERVICE PROTO NAME | addr IP")
		os.Exit(2)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for _, l := range lines {
		fmt.Println(l)
	}
}
