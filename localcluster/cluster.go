package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// defaultClusterDir is relative to the repository root, where the scripts run.
const defaultClusterDir = ".berth/cluster"

// components in start order; they are stopped in reverse.
var components = []string{"etcd", "apiserver", "controller-manager", "scheduler", "nodes", "metrics-server"}

// clusterConfig is what `up` decides before the supervisor starts, kept in
// the state directory so that every later command reads the same values.
type clusterConfig struct {
	EtcdClient string `json:"etcdClient"`
	EtcdPeer   string `json:"etcdPeer"`
	APIServer  string `json:"apiServer"`
	Nodes      int    `json:"nodes"`
	// MetricsServer is metrics-server's address on 127.0.0.1.
	MetricsServer string `json:"metricsServer"`
}

// egressSocket is the apiserver's way to the cluster network (egress.go),
// served by the fake nodes, relative to the state directory.
const egressSocket = "egress.sock"

func clusterPath(dir string, parts ...string) string {
	return filepath.Join(append([]string{dir}, parts...)...)
}

func pidFile(dir, name string) string { return clusterPath(dir, name+".pid") }

func readConfig(dir string) (*clusterConfig, error) {
	raw, err := os.ReadFile(clusterPath(dir, "cluster.json"))
	if err != nil {
		return nil, err
	}
	var cfg clusterConfig
	return &cfg, json.Unmarshal(raw, &cfg)
}

func dirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", defaultClusterDir, "cluster state directory")
}

// canonicalDir returns dir absolute with every symlink resolved. The
// cluster's processes are recognised by the state directory's path in their
// command lines, so each way of reaching the directory (a worktree whose
// .berth links to another checkout's, say) must name it the same way.
func canonicalDir(dir string, create bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if create {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", err
		}
	}
	return filepath.EvalSymlinks(abs)
}

// runUp starts the cluster in the background and returns once it is ready.
func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dirArg := dirFlag(fs)
	nodes := fs.Int("nodes", 3, "number of fake nodes")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for the cluster to become ready")
	_ = fs.Parse(args)
	dir, err := canonicalDir(*dirArg, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	unlock, err := lockDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		return 1
	}
	defer unlock()
	if readPid(dir, "supervisor") != 0 {
		// A live supervisor gets time to answer: on a loaded machine /readyz
		// can be slow, and tearing down a cluster that other test processes
		// are using would fail them.
		if err := waitHealthy(dir, 30*time.Second); err == nil {
			fmt.Println("cluster already running; kubeconfig:", clusterPath(dir, "kubeconfig"))
			return 0
		}
	}
	start := time.Now()
	// Whatever is left of an earlier run is not healthy: stop its processes
	// and start over from an empty state.
	stopCluster(dir)
	if err := prepare(dir, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "up: preparing the cluster:", err)
		return 1
	}
	supervisor, err := startSupervisor(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up: starting the supervisor:", err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- supervisor.Wait() }()
	deadline := time.After(*timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			fmt.Fprintf(os.Stderr, "up: the cluster supervisor exited (%v) before the cluster was ready; logs in %s\n", err, clusterPath(dir, "logs"))
			printLogTails(dir)
			return 1
		case <-deadline:
			fmt.Fprintf(os.Stderr, "up: the cluster was not ready after %s; logs in %s\n", *timeout, clusterPath(dir, "logs"))
			printLogTails(dir)
			stopCluster(dir)
			return 1
		case <-tick.C:
			if _, err := os.Stat(clusterPath(dir, "ready")); err == nil {
				fmt.Printf("cluster ready in %.1fs; kubeconfig: %s\n", time.Since(start).Seconds(), clusterPath(dir, "kubeconfig"))
				return 0
			}
		}
	}
}

func printLogTails(dir string) {
	for _, name := range append([]string{"supervisor"}, components...) {
		raw, err := os.ReadFile(clusterPath(dir, "logs", name+".log"))
		if err != nil || len(raw) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(os.Stderr, "--- last lines of %s.log ---\n%s\n", name, strings.Join(lines, "\n"))
	}
}

const lockName = ".lock"

// lockDir serialises up and down on one state directory: test binaries
// running side by side may all ask for the cluster at the same moment.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(clusterPath(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// prepare empties the state directory (keeping only the logs folder) and
// writes everything the components are started with: ports, certificates,
// kubeconfigs, service account keys and the encryption configuration.
func prepare(dir string, nodes int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "logs" && e.Name() != lockName {
			if err := os.RemoveAll(clusterPath(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	for _, sub := range []string{"pki", "kubeconfigs", "logs"} {
		if err := os.MkdirAll(clusterPath(dir, sub), 0o700); err != nil {
			return err
		}
	}
	cfg := clusterConfig{Nodes: nodes}
	for _, p := range []*string{&cfg.EtcdClient, &cfg.EtcdPeer, &cfg.APIServer, &cfg.MetricsServer} {
		if *p, err = freePort(); err != nil {
			return err
		}
	}
	pki := clusterPath(dir, "pki")
	ca, err := newCA("berth-local-ca")
	if err != nil {
		return err
	}
	if err := ca.write(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key")); err != nil {
		return err
	}
	serving, err := ca.issue("kube-apiserver", nil,
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return err
	}
	if err := serving.write(filepath.Join(pki, "apiserver.crt"), filepath.Join(pki, "apiserver.key")); err != nil {
		return err
	}
	if err := prepareAggregationAndKubelets(dir, ca, nodes); err != nil {
		return err
	}
	server := "https://" + cfg.APIServer
	clients := map[string][2]string{
		"admin":              {"berth-admin", "system:masters"},
		"controller-manager": {"system:kube-controller-manager", ""},
		"scheduler":          {"system:kube-scheduler", ""},
		"metrics-server":     {metricsServerUser, ""},
	}
	for i := 0; i < nodes; i++ {
		clients[nodeName(i)] = [2]string{"system:node:" + nodeName(i), "system:nodes"}
	}
	for name, subject := range clients {
		var orgs []string
		if subject[1] != "" {
			orgs = []string{subject[1]}
		}
		kp, err := ca.issue(subject[0], orgs, nil, nil)
		if err != nil {
			return err
		}
		if err := writeKubeconfig(clusterPath(dir, "kubeconfigs", name+".kubeconfig"), server, ca.certPEM, kp, subject[0]); err != nil {
			return err
		}
	}
	if err := writeServiceAccountKeys(filepath.Join(pki, "sa.key"), filepath.Join(pki, "sa.pub")); err != nil {
		return err
	}
	if err := writeEncryptionConfig(filepath.Join(pki, "encryption-config.yaml")); err != nil {
		return err
	}
	if err := os.WriteFile(clusterPath(dir, "egress-selector.yaml"), []byte(egressConfig(clusterPath(dir, egressSocket))), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(clusterPath(dir, "cluster.json"), raw, 0o644); err != nil {
		return err
	}
	return os.WriteFile(clusterPath(dir, "etcd-endpoint"), []byte("http://"+cfg.EtcdClient+"\n"), 0o644)
}

// prepareAggregationAndKubelets writes the certificates of the aggregation
// layer (a front-proxy CA of its own, whose client the apiserver presents to
// aggregated APIs), the apiserver's client certificate towards kubelets,
// each fake kubelet's serving certificate, and metrics-server's.
func prepareAggregationAndKubelets(dir string, ca *keyPair, nodes int) error {
	pki := func(name string) string { return clusterPath(dir, "pki", name) }
	frontProxyCA, err := newCA("berth-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := frontProxyCA.write(pki("front-proxy-ca.crt"), pki("front-proxy-ca.key")); err != nil {
		return err
	}
	frontProxyClient, err := frontProxyCA.issue("front-proxy-client", nil, nil, nil)
	if err != nil {
		return err
	}
	if err := frontProxyClient.write(pki("front-proxy-client.crt"), pki("front-proxy-client.key")); err != nil {
		return err
	}
	kubeletClient, err := ca.issue(kubeletClientUser, nil, nil, nil)
	if err != nil {
		return err
	}
	if err := kubeletClient.write(pki("apiserver-kubelet-client.crt"), pki("apiserver-kubelet-client.key")); err != nil {
		return err
	}
	for i := 0; i < nodes; i++ {
		serving, err := ca.issue(nodeName(i), nil,
			[]net.IP{net.ParseIP(nodeInternalIP(i)), net.ParseIP(nodeExternalIP(i))}, []string{nodeName(i)})
		if err != nil {
			return err
		}
		certFile, keyFile := kubeletCertFiles(dir, i)
		if err := serving.write(certFile, keyFile); err != nil {
			return err
		}
	}
	metricsServing, err := ca.issue(metricsServerService, nil,
		[]net.IP{net.ParseIP("127.0.0.1")}, []string{metricsServerDNSName, "localhost"})
	if err != nil {
		return err
	}
	return metricsServing.write(pki("metrics-server.crt"), pki("metrics-server.key"))
}

// startSupervisor starts `berth-cluster supervise` detached from the caller's
// session and output, so that `up` (and whoever waits on its output, such as
// a test harness) can return while the cluster keeps running.
func startSupervisor(dir string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(clusterPath(dir, "logs", "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(exe, "supervise", "--dir", dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, cmd.Start()
}

// readPid returns the pid recorded in a pid file when that process is alive
// and is one of this cluster's (its command line names the state directory),
// so that a stale pid reused by an unrelated process is never signalled.
func readPid(dir, name string) int {
	raw, err := os.ReadFile(pidFile(dir, name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0
	}
	if ours(pid, dir) {
		return pid
	}
	return 0
}

func ours(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), dir)
}

// healthy tells whether the cluster in dir is up: its supervisor runs, it
// reported ready, and the apiserver answers /readyz.
func healthy(dir string) error {
	if readPid(dir, "supervisor") == 0 {
		return errors.New("the supervisor is not running")
	}
	if _, err := os.Stat(clusterPath(dir, "ready")); err != nil {
		return errors.New("the cluster has not reported ready")
	}
	client, err := clientFor(clusterPath(dir, "kubeconfig"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

func waitHealthy(dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := healthy(dir)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func aggregatorFor(kubeconfig string) (*aggregator.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return aggregator.NewForConfig(cfg)
}

func clientFor(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// stopCluster stops the supervisor (which stops its components in order),
// then kills any component that outlived it, and removes the pid files and
// the markers of a running cluster.
func stopCluster(dir string) {
	if pid := readPid(dir, "supervisor"); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		if !waitGone(pid, dir, 45*time.Second) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, dir, 5*time.Second)
		}
	}
	for _, name := range components {
		if pid := readPid(dir, name); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid, dir, 5*time.Second)
		}
	}
	for _, name := range append([]string{"supervisor"}, components...) {
		_ = os.Remove(pidFile(dir, name))
	}
	_ = os.Remove(clusterPath(dir, "ready"))
	_ = os.Remove(clusterPath(dir, "kubeconfig"))
}

func waitGone(pid int, dir string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !ours(pid, dir) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return !ours(pid, dir)
}

func runDown(args []string) int {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	dirArg := dirFlag(fs)
	_ = fs.Parse(args)
	dir, err := canonicalDir(*dirArg, false)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("cluster not running")
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "down:", err)
		return 1
	}
	unlock, err := lockDir(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "down:", err)
		return 1
	}
	defer unlock()
	stopCluster(dir)
	fmt.Println("cluster stopped")
	return 0
}

func runStatus(args []string) int {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	dirArg := dirFlag(fs)
	_ = fs.Parse(args)
	dir, err := canonicalDir(*dirArg, false)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("cluster not running: no state directory")
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		return 1
	}
	if err := healthy(dir); err != nil {
		fmt.Println("cluster not running:", err)
		return 1
	}
	cfg, err := readConfig(dir)
	if err != nil {
		fmt.Println("cluster not running:", err)
		return 1
	}
	fmt.Printf("cluster running\n  apiserver:  https://%s\n  etcd:       http://%s\n  kubeconfig: %s\n  logs:       %s\n",
		cfg.APIServer, cfg.EtcdClient, clusterPath(dir, "kubeconfig"), clusterPath(dir, "logs"))
	return 0
}

// child is one running component of the cluster.
type child struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

type supervisor struct {
	dir      string
	exe      string
	children []*child
	// anyExit receives the child that exited, whichever it is.
	anyExit chan *child
}

func (s *supervisor) start(name string, args ...string) error {
	logFile, err := os.OpenFile(clusterPath(s.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(s.exe, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = s.dir
	// Should the supervisor be killed outright, its components die with it
	// instead of lingering unsupervised.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	s.children = append(s.children, c)
	if err := os.WriteFile(pidFile(s.dir, name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
		s.anyExit <- c
	}()
	return nil
}

// stopAll stops the components in reverse start order, each with SIGTERM and,
// past a grace period, SIGKILL.
func (s *supervisor) stopAll() {
	for i := len(s.children) - 1; i >= 0; i-- {
		c := s.children[i]
		select {
		case <-c.exited:
			continue
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			fmt.Fprintf(os.Stderr, "%s did not stop after SIGTERM; killing it\n", c.name)
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		_ = os.Remove(pidFile(s.dir, c.name))
	}
}

// waitFor polls check until it succeeds, a component exits, the context ends
// or the timeout passes.
func (s *supervisor) waitFor(ctx context.Context, what string, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(attempt)
		cancel()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %s: %w", what, timeout, last)
		}
		select {
		case c := <-s.anyExit:
			return fmt.Errorf("%s exited (%v) while waiting for %s", c.name, c.err, what)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func runSupervise(args []string) int {
	fs := flag.NewFlagSet("supervise", flag.ExitOnError)
	dirArg := dirFlag(fs)
	_ = fs.Parse(args)
	dir, err := canonicalDir(*dirArg, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer cancel()
	if err := os.WriteFile(pidFile(dir, "supervisor"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
	s := &supervisor{dir: dir, exe: exe, anyExit: make(chan *child, len(components))}
	defer func() {
		// The markers of a ready cluster go first, so that nothing takes a
		// stopping cluster for a running one.
		_ = os.Remove(clusterPath(dir, "ready"))
		_ = os.Remove(clusterPath(dir, "kubeconfig"))
		s.stopAll()
		_ = os.Remove(pidFile(dir, "supervisor"))
	}()
	if err := s.bringUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "cluster ready")
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "stopping the cluster")
		return 0
	case c := <-s.anyExit:
		fmt.Fprintf(os.Stderr, "%s exited (%v); stopping the cluster\n", c.name, c.err)
		return 1
	}
}

func (s *supervisor) bringUp(ctx context.Context) error {
	dir := s.dir
	cfg, err := readConfig(dir)
	if err != nil {
		return err
	}
	pki := func(name string) string { return clusterPath(dir, "pki", name) }
	kubeconfig := func(name string) string { return clusterPath(dir, "kubeconfigs", name+".kubeconfig") }
	t0 := time.Now()
	logStep := func(step string) { fmt.Fprintf(os.Stderr, "%5.1fs %s\n", time.Since(t0).Seconds(), step) }

	if err := s.start("etcd", "--data-dir", clusterPath(dir, "etcd"), "--listen-client", cfg.EtcdClient, "--listen-peer", cfg.EtcdPeer); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "etcd", 30*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, "http://"+cfg.EtcdClient+"/health")
	}); err != nil {
		return err
	}
	logStep("etcd ready")

	_, port, _ := net.SplitHostPort(cfg.APIServer)
	issuer := "https://kubernetes.default.svc.cluster.local"
	if err := s.start("apiserver",
		"--etcd-servers=http://"+cfg.EtcdClient,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+port,
		"--tls-cert-file="+pki("apiserver.crt"),
		"--tls-private-key-file="+pki("apiserver.key"),
		"--client-ca-file="+pki("ca.crt"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,PodSecurity,ResourceQuota,DefaultTolerationSeconds,TaintNodesByCondition,Priority",
		"--encryption-provider-config="+pki("encryption-config.yaml"),
		"--service-account-issuer="+issuer,
		"--api-audiences="+issuer,
		"--service-account-key-file="+pki("sa.pub"),
		"--service-account-signing-key-file="+pki("sa.key"),
		"--allow-privileged=true",
		// The only address is loopback, which an Endpoints object may not hold.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		// Kubelets: the apiserver authenticates to them with a client
		// certificate, verifies theirs against the cluster CA, and reaches
		// them at their ExternalIP through the egress proxy (egress.go).
		"--kubelet-client-certificate="+pki("apiserver-kubelet-client.crt"),
		"--kubelet-client-key="+pki("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+pki("ca.crt"),
		"--kubelet-preferred-address-types=ExternalIP",
		"--egress-selector-config-file="+clusterPath(dir, "egress-selector.yaml"),
		// The aggregation layer, for metrics.k8s.io.
		"--requestheader-client-ca-file="+pki("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pki("front-proxy-client.crt"),
		"--proxy-client-key-file="+pki("front-proxy-client.key"),
	); err != nil {
		return err
	}
	admin, err := clientFor(kubeconfig("admin"))
	if err != nil {
		return err
	}
	if err := s.waitFor(ctx, "apiserver", 60*time.Second, func(ctx context.Context) error {
		_, err := admin.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return err
	}
	logStep("apiserver ready")
	caPEM, err := os.ReadFile(pki("ca.crt"))
	if err != nil {
		return err
	}
	agg, err := aggregatorFor(kubeconfig("admin"))
	if err != nil {
		return err
	}
	_, metricsPort, err := net.SplitHostPort(cfg.MetricsServer)
	if err != nil {
		return err
	}
	metricsPortNumber, err := strconv.Atoi(metricsPort)
	if err != nil {
		return err
	}
	if err := s.waitFor(ctx, "the bootstrap objects", 30*time.Second, func(ctx context.Context) error {
		return bootstrapObjects(ctx, admin, metricsPortNumber)
	}); err != nil {
		return err
	}

	if err := s.start("controller-manager",
		"--kubeconfig="+kubeconfig("controller-manager"),
		"--secure-port=0",
		"--leader-elect=false",
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki("sa.key"),
		"--root-ca-file="+pki("ca.crt"),
		"--cluster-signing-cert-file="+pki("ca.crt"),
		"--cluster-signing-key-file="+pki("ca.key"),
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	); err != nil {
		return err
	}
	if err := s.start("scheduler",
		"--kubeconfig="+kubeconfig("scheduler"),
		"--secure-port=0",
		"--leader-elect=false",
	); err != nil {
		return err
	}
	if err := s.start("nodes", "--dir", dir, "--count", strconv.Itoa(cfg.Nodes)); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "a schedulable Ready node", 60*time.Second, func(ctx context.Context) error {
		return schedulableNode(ctx, admin)
	}); err != nil {
		return err
	}
	logStep("nodes ready")
	if err := s.start("metrics-server", metricsServerArgs(dir, metricsPortNumber)...); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "metrics-server", 60*time.Second, func(ctx context.Context) error {
		return serving(ctx, "https://"+cfg.MetricsServer+"/livez", caPEM)
	}); err != nil {
		return err
	}
	if err := s.waitFor(ctx, "the metrics API's registration", 30*time.Second, func(ctx context.Context) error {
		return registerMetricsAPI(ctx, agg, caPEM, metricsPortNumber)
	}); err != nil {
		return err
	}
	logStep("metrics-server serving")
	if err := s.waitFor(ctx, "the default ServiceAccount", 60*time.Second, func(ctx context.Context) error {
		_, err := admin.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	logStep("default ServiceAccount present")
	// Until the aggregator reaches metrics-server, API discovery reports
	// metrics.k8s.io as failing, which holds up namespace deletion; serving
	// metrics needs a scrape more, which happens in the background.
	if err := s.waitFor(ctx, "the metrics.k8s.io API", 60*time.Second, func(ctx context.Context) error {
		return metricsAPIAvailable(ctx, agg)
	}); err != nil {
		return err
	}
	logStep("metrics API available")

	// The admin kubeconfig appears at its well-known place only now, so that
	// its presence means a cluster that was ready.
	raw, err := os.ReadFile(kubeconfig("admin"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(clusterPath(dir, "kubeconfig"), raw, 0o600); err != nil {
		return err
	}
	return os.WriteFile(clusterPath(dir, "ready"), []byte(time.Now().Format(time.RFC3339)+"\n"), 0o644)
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// schedulableNode succeeds once some node is Ready and the node lifecycle
// controller has lifted the not-ready taint, so that pods created from now on
// are scheduled at once.
func schedulableNode(ctx context.Context, client kubernetes.Interface) error {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, node := range nodes.Items {
		ready := false
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		tainted := false
		for _, t := range node.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				tainted = true
			}
		}
		if ready && !tainted {
			return nil
		}
	}
	return fmt.Errorf("%d nodes, none Ready and untainted", len(nodes.Items))
}
