package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream binaries

	"github.com/spf13/cobra"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // the JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // the version metric
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// runUpstream runs one of the upstream Kubernetes commands with args as its
// command line, exactly as its own main package would.
func runUpstream(newCommand func() *cobra.Command, args []string) int {
	command := newCommand()
	command.SetArgs(args)
	return cli.Run(command)
}

func runAPIServer(args []string) int {
	return runUpstream(apiserver.NewAPIServerCommand, args)
}

func runControllerManager(args []string) int {
	return runUpstream(controllermanager.NewControllerManagerCommand, args)
}

func runScheduler(args []string) int {
	return runUpstream(func() *cobra.Command { return scheduler.NewSchedulerCommand() }, args)
}

// runKubectl mirrors cmd/kubectl: kubectl reads os.Args itself for plugins and
// verbosity, so argv is rewritten to look like a plain kubectl invocation.
func runKubectl(args []string) int {
	os.Args = append([]string{"kubectl"}, args...)
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	command := kubectlcmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
	return 0
}
