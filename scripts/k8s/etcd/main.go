// etcd at the version kube-apiserver is built and tested with (the
// go.etcd.io/etcd/server/v3 that k8s.io/kubernetes requires).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
