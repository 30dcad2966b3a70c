// Command berth-cluster is a multi-call binary holding a whole local
// Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, metrics-server, kubectl and fake nodes) for Berth's
// development and tests.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(dispatch(os.Args))
}

func dispatch(argv []string) int {
	if filepath.Base(argv[0]) == "kubectl" {
		return runKubectl(argv[1:])
	}
	if len(argv) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	args := argv[2:]
	switch argv[1] {
	case "apiserver":
		return runAPIServer(args)
	case "controller-manager":
		return runControllerManager(args)
	case "scheduler":
		return runScheduler(args)
	case "kubectl":
		return runKubectl(args)
	case "etcd":
		return runEtcd(args)
	case "etcdget":
		return runEtcdGet(args)
	case "nodes":
		return runNodes(args)
	case "metrics-server":
		return runMetricsServer(args)
	case "up":
		return runUp(args)
	case "supervise":
		return runSupervise(args)
	case "down":
		return runDown(args)
	case "status":
		return runStatus(args)
	default:
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
}

const usage = `usage: berth-cluster COMMAND [ARGS]

cluster lifecycle (state in --dir, default .berth/cluster):
  up, down, status, etcdget KEY
components (normally started by up):
  etcd, apiserver, controller-manager, scheduler, nodes, metrics-server, supervise
client:
  kubectl (also when invoked through a link named kubectl)`
