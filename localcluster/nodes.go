package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// The fake node agent stands in for the kubelet: it registers Nodes, keeps
// them alive through Lease heartbeats, and plays the container runtime by
// reporting every pod bound to its node as Running and Ready, and by
// finishing the deletion of pods that are terminating. Each node talks to the
// apiserver with its own system:node credentials, so the Node authorizer and
// the NodeRestriction admission plugin confine it exactly as they would a
// kubelet. Each node also serves the kubelet's HTTPS API (kubelet.go).

const (
	leaseDuration   = 40 * time.Second
	leaseRenewEvery = 10 * time.Second
	// The node lifecycle controller only needs the Lease to see a node as
	// alive; status is refreshed now and then as the kubelet does.
	statusEvery = time.Minute

	nodeCPUCores    = 32
	nodeMemoryBytes = 256 << 30
)

func nodeName(i int) string { return fmt.Sprintf("berth-node-%d", i) }

func runNodes(args []string) int {
	fs := flag.NewFlagSet("nodes", flag.ExitOnError)
	dir := fs.String("dir", defaultClusterDir, "cluster state directory")
	count := fs.Int("count", 3, "number of fake nodes")
	_ = fs.Parse(args)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	caPEM, err := os.ReadFile(filepath.Join(*dir, "pki", "ca.crt"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodes:", err)
		return 1
	}
	var wg sync.WaitGroup
	errs := make(chan error, *count+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := serveEgress(ctx, filepath.Join(*dir, egressSocket)); err != nil {
			errs <- fmt.Errorf("egress proxy: %w", err)
			cancel()
		}
	}()
	for i := 0; i < *count; i++ {
		kubeconfig := filepath.Join(*dir, "kubeconfigs", nodeName(i)+".kubeconfig")
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nodes:", err)
			return 1
		}
		cfg.QPS, cfg.Burst = 50, 100
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nodes:", err)
			return 1
		}
		n := &fakeNode{name: nodeName(i), index: i, client: client}
		n.cpu.at = time.Now()
		n.kubelet, err = newKubeletServer(n, client, caPEM)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nodes:", err)
			return 1
		}
		certFile, keyFile := kubeletCertFiles(*dir, i)
		n.listener, err = n.kubelet.listen(certFile, keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nodes:", n.name, err)
			return 1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", n.name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	code := 0
	for err := range errs {
		fmt.Fprintln(os.Stderr, "nodes:", err)
		code = 1
	}
	return code
}

type fakeNode struct {
	name     string
	index    int
	client   kubernetes.Interface
	kubelet  *kubeletServer
	listener net.Listener
	// pods holds the pods bound to the node, from its informer.
	pods cache.Indexer
	cpu  nodeCPU

	mu     sync.Mutex
	nextIP int
	podIPs map[string]string
}

// internalIP is on the loopback range on purpose: whatever reaches a fake
// node stays on the machine. The apiserver reaches it through its ExternalIP
// and the egress proxy (egress.go).
func (n *fakeNode) internalIP() string { return nodeInternalIP(n.index) }

func (n *fakeNode) kubeletPort() int32 {
	return int32(n.listener.Addr().(*net.TCPAddr).Port)
}

// podIP hands out addresses from the node's pod CIDR; they are bookkeeping
// only, since no pod really runs.
func (n *fakeNode) podIP(uid string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ip, ok := n.podIPs[uid]; ok {
		return ip
	}
	n.nextIP++
	ip := fmt.Sprintf("10.244.%d.%d", n.index, 2+n.nextIP%250)
	n.podIPs[uid] = ip
	return ip
}

func (n *fakeNode) forgetPod(uid string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.podIPs, uid)
}

func (n *fakeNode) run(ctx context.Context) error {
	n.podIPs = map[string]string{}
	factory := informers.NewSharedInformerFactoryWithOptions(n.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", n.name).String()
		}))
	informer := factory.Core().V1().Pods().Informer()
	n.pods = informer.GetIndexer()
	go n.kubelet.serve(ctx, n.listener)
	if err := n.register(ctx); err != nil {
		return err
	}
	go wait.UntilWithContext(ctx, n.renewLease, leaseRenewEvery)
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := n.updateStatus(ctx); err != nil {
			klog.ErrorS(err, "updating node status", "node", n.name)
		}
	}, statusEvery)
	n.runPods(ctx, factory, informer)
	return nil
}

func (n *fakeNode) register(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				"kubernetes.io/hostname": n.name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"berth.dev/fake-node":    "true",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", n.index)},
	}
	err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 1.5, Steps: 20, Cap: 5 * time.Second},
		func(ctx context.Context) (bool, error) {
			_, err := n.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				return true, nil
			}
			klog.ErrorS(err, "registering node", "node", n.name)
			return false, nil
		})
	if err != nil {
		return fmt.Errorf("registering node: %w", err)
	}
	return n.updateStatus(ctx)
}

func (n *fakeNode) updateStatus(ctx context.Context) error {
	node, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("256Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	condition := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, old := range node.Status.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	node.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "berth fake node is ready"),
			condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "fake node"),
			condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "fake node"),
			condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "fake node"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.internalIP()},
			{Type: corev1.NodeExternalIP, Address: nodeExternalIP(n.index)},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: n.kubeletPort()}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               n.name,
			SystemUUID:              n.name,
			BootID:                  n.name,
			KernelVersion:           "berth-fake",
			OSImage:                 "Berth fake node",
			ContainerRuntimeVersion: "berth-fake://1.0.0",
			KubeletVersion:          version.Get().GitVersion,
			KubeProxyVersion:        version.Get().GitVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
	}
	_, err = n.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}

func (n *fakeNode) renewLease(ctx context.Context) {
	leases := n.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			klog.ErrorS(err, "reading node for its lease", "node", n.name)
			return
		}
		lease = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:      n.name,
				Namespace: corev1.NamespaceNodeLease,
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
				}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(n.name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}
		if _, err := leases.Create(ctx, lease, metav1.CreateOptions{}); err != nil {
			klog.ErrorS(err, "creating lease", "node", n.name)
		}
		return
	}
	if err != nil {
		klog.ErrorS(err, "reading lease", "node", n.name)
		return
	}
	lease.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		klog.ErrorS(err, "renewing lease", "node", n.name)
	}
}

// runPods watches the pods bound to this node and drives each one through a
// work queue, so that a failed update is retried with back-off.
func (n *fakeNode) runPods(ctx context.Context, factory informers.SharedInformerFactory, informer cache.SharedIndexInformer) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)

	for w := 0; w < 2; w++ {
		go func() {
			for {
				key, shutdown := queue.Get()
				if shutdown {
					return
				}
				obj, exists, err := informer.GetIndexer().GetByKey(key)
				if err == nil && exists {
					err = n.syncPod(ctx, obj.(*corev1.Pod))
				}
				switch {
				case err == nil, apierrors.IsNotFound(err):
					queue.Forget(key)
				case apierrors.IsConflict(err):
					// The cache was behind; the newer version reaches the
					// informer soon and queues the pod again.
					queue.Forget(key)
				default:
					klog.ErrorS(err, "syncing pod", "node", n.name, "pod", key)
					queue.AddRateLimited(key)
				}
				queue.Done(key)
			}
		}()
	}
	<-ctx.Done()
}

func (n *fakeNode) syncPod(ctx context.Context, pod *corev1.Pod) error {
	pods := n.client.CoreV1().Pods(pod.Namespace)
	if pod.DeletionTimestamp != nil {
		// The kubelet's last word on a terminating pod: its containers are
		// gone, so the object can go too.
		n.forgetPod(string(pod.UID))
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if pod.Status.Phase == corev1.PodRunning && podReady(pod) {
		return nil
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	status := n.runningStatus(pod)
	updated := pod.DeepCopy()
	updated.Status = status
	_, err := pods.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	return err
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (n *fakeNode) runningStatus(pod *corev1.Pod) corev1.PodStatus {
	now := metav1.Now()
	ip := n.podIP(string(pod.UID))
	if pod.Spec.HostNetwork {
		ip = n.internalIP()
	}
	containerID := func(name string) string {
		return "berth-fake://" + fakeContainerID(pod, name)
	}
	status := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    n.internalIP(),
		HostIPs:   []corev1.HostIP{{IP: n.internalIP()}},
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &now,
		QOSClass:  pod.Status.QOSClass,
	}
	if pod.Status.StartTime != nil {
		status.StartTime = pod.Status.StartTime
	}
	for _, t := range []corev1.PodConditionType{
		corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled,
	} {
		status.Conditions = append(status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	for _, c := range pod.Spec.InitContainers {
		status.InitContainerStatuses = append(status.InitContainerStatuses, corev1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     c.Image,
			ContainerID: containerID(c.Name),
			Ready:       true,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: containerID(c.Name),
			}},
		})
	}
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name:        c.Name,
			Image:       c.Image,
			ImageID:     c.Image,
			ContainerID: containerID(c.Name),
			Ready:       true,
			Started:     ptr.To(true),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return status
}

// fakeContainerID is the runtime's ID of a container, without the scheme.
func fakeContainerID(pod *corev1.Pod, container string) string {
	return fmt.Sprintf("%s-%s", pod.UID, container)
}

// kubeletCertFiles are the node's kubelet serving certificate and key,
// written by `up`.
func kubeletCertFiles(dir string, i int) (string, string) {
	return filepath.Join(dir, "pki", nodeName(i)+"-kubelet.crt"), filepath.Join(dir, "pki", nodeName(i)+"-kubelet.key")
}
