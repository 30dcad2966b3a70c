package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Usage figures of the fake containers. Nothing runs, so each container
// "uses" a deterministic share of what it requested: the same pod, container
// and age always give the same numbers, which lets tests and autoscalers
// reason about them.
const (
	// A container without a CPU request uses a share of 10m, without a
	// memory request or limit a share of 16Mi: small, never zero.
	defaultCPUCores    = 0.01
	defaultMemoryBytes = 16 << 20
	// The node itself (system daemons, the kubelet) uses this much.
	nodeBaseCPUCores    = 0.25
	nodeBaseMemoryBytes = 1 << 30
)

// share is a deterministic number in [lo, hi) for the given names.
func share(lo, hi float64, names ...string) float64 {
	h := fnv.New64a()
	for _, n := range names {
		_, _ = h.Write([]byte(n))
		_, _ = h.Write([]byte{0})
	}
	return lo + (hi-lo)*float64(h.Sum64()%10000)/10000
}

// containerUsage is one running container's usage at some instant.
type containerUsage struct {
	pod       *corev1.Pod
	container corev1.Container
	start     time.Time
	cpuCores  float64 // the constant rate the container uses CPU at
	cpuTotal  float64 // core-seconds since it started
	memory    float64 // working set, bytes
}

// usageOf derives a container's usage from its requests and age: it uses
// 20–80% of its CPU request and holds 30–70% of its memory request (or
// limit) as working set, the share fixed by the pod's and container's names.
func usageOf(pod *corev1.Pod, c corev1.Container, start, now time.Time) containerUsage {
	cpu := defaultCPUCores
	if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok && !q.IsZero() {
		cpu = q.AsApproximateFloat64()
	}
	mem := float64(defaultMemoryBytes)
	if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok && !q.IsZero() {
		mem = q.AsApproximateFloat64()
	} else if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !q.IsZero() {
		mem = q.AsApproximateFloat64()
	}
	rate := cpu * share(0.2, 0.8, "cpu", pod.Namespace, pod.Name, c.Name)
	age := now.Sub(start).Seconds()
	// A counter of zero reads as "no data" to metrics-server, so a container
	// scraped in the second it started has used a microsecond already.
	total := max(rate*age, 1e-6)
	return containerUsage{
		pod:       pod,
		container: c,
		start:     start,
		cpuCores:  rate,
		cpuTotal:  total,
		memory:    float64(int64(mem * share(0.3, 0.7, "memory", pod.Namespace, pod.Name, c.Name))),
	}
}

// nodeCPU accumulates the node's CPU counter, which must only grow even as
// pods come and go: each scrape adds the current rate over the time since
// the last one.
type nodeCPU struct {
	mu    sync.Mutex
	total float64
	at    time.Time
}

func (n *nodeCPU) advance(now time.Time, rate float64) float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.After(n.at) {
		n.total += rate * now.Sub(n.at).Seconds()
		n.at = now
	}
	return n.total
}

// usage lists the running containers of the node's pods in a stable order.
func (s *kubeletServer) usage(now time.Time) []containerUsage {
	pods := s.runningPods()
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	var out []containerUsage
	for _, pod := range pods {
		for _, c := range pod.Spec.Containers {
			if start, ok := containerStart(pod, c.Name); ok {
				out = append(out, usageOf(pod, c, start, now))
			}
		}
	}
	return out
}

// metricsWriter writes the Prometheus text exposition format.
type metricsWriter struct {
	w  *bufio.Writer
	ts string
}

func newMetricsWriter(w http.ResponseWriter, now time.Time) *metricsWriter {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	return &metricsWriter{w: bufio.NewWriter(w), ts: strconv.FormatInt(now.UnixMilli(), 10)}
}

func (m *metricsWriter) family(name, kind, help string) {
	fmt.Fprintf(m.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
}

// sample writes one series; labels are name/value pairs in the order given.
func (m *metricsWriter) sample(name string, value float64, labels ...string) {
	m.w.WriteString(name)
	if len(labels) > 0 {
		m.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.w.WriteByte(',')
			}
			fmt.Fprintf(m.w, "%s=\"%s\"", labels[i], labelEscaper.Replace(labels[i+1]))
		}
		m.w.WriteByte('}')
	}
	fmt.Fprintf(m.w, " %s %s\n", strconv.FormatFloat(value, 'g', -1, 64), m.ts)
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// serveResourceMetrics is the kubelet's /metrics/resource, which
// metrics-server reads: the same families, names and labels.
func (s *kubeletServer) serveResourceMetrics(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	usage := s.usage(now)
	m := newMetricsWriter(w, now)
	defer m.w.Flush()

	m.family("container_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the container in core-seconds")
	for _, u := range usage {
		m.sample("container_cpu_usage_seconds_total", u.cpuTotal, "container", u.container.Name, "namespace", u.pod.Namespace, "pod", u.pod.Name)
	}
	m.family("container_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the container in bytes")
	for _, u := range usage {
		m.sample("container_memory_working_set_bytes", u.memory, "container", u.container.Name, "namespace", u.pod.Namespace, "pod", u.pod.Name)
	}
	m.family("container_start_time_seconds", "gauge", "[STABLE] Start time of the container since unix epoch in seconds")
	for _, u := range usage {
		m.sample("container_start_time_seconds", float64(u.start.Unix()), "container", u.container.Name, "namespace", u.pod.Namespace, "pod", u.pod.Name)
	}
	nodeRate, nodeMemory := nodeBaseCPUCores, float64(nodeBaseMemoryBytes)
	for _, u := range usage {
		nodeRate += u.cpuCores
		nodeMemory += u.memory
	}
	m.family("node_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the node in core-seconds")
	m.sample("node_cpu_usage_seconds_total", s.node.cpu.advance(now, nodeRate))
	m.family("node_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the node in bytes")
	m.sample("node_memory_working_set_bytes", nodeMemory)

	type podTotal struct {
		namespace, name string
		cpu, memory     float64
	}
	var pods []*podTotal
	for _, u := range usage {
		if len(pods) == 0 || pods[len(pods)-1].namespace != u.pod.Namespace || pods[len(pods)-1].name != u.pod.Name {
			pods = append(pods, &podTotal{namespace: u.pod.Namespace, name: u.pod.Name})
		}
		pods[len(pods)-1].cpu += u.cpuTotal
		pods[len(pods)-1].memory += u.memory
	}
	m.family("pod_cpu_usage_seconds_total", "counter", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds")
	for _, p := range pods {
		m.sample("pod_cpu_usage_seconds_total", p.cpu, "namespace", p.namespace, "pod", p.name)
	}
	m.family("pod_memory_working_set_bytes", "gauge", "[STABLE] Current working set of the pod in bytes")
	for _, p := range pods {
		m.sample("pod_memory_working_set_bytes", p.memory, "namespace", p.namespace, "pod", p.name)
	}
	m.family("resource_scrape_error", "gauge", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise")
	m.sample("resource_scrape_error", 0)
	m.family("scrape_error", "gauge", "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise")
	m.sample("scrape_error", 0)
}

// cgroupID is the cgroup path cAdvisor reports as a container's id under
// the cgroupfs driver.
func cgroupID(pod *corev1.Pod, containerID string) string {
	parent := "/kubepods"
	switch pod.Status.QOSClass {
	case corev1.PodQOSBurstable:
		parent += "/burstable"
	case corev1.PodQOSBestEffort:
		parent += "/besteffort"
	}
	return fmt.Sprintf("%s/pod%s/%s", parent, pod.UID, containerID)
}

// serveCadvisorMetrics is the kubelet's /metrics/cadvisor: cAdvisor's
// container families with its labels (container, pod, namespace, id, image,
// name), one series per running container.
func (s *kubeletServer) serveCadvisorMetrics(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	usage := s.usage(now)
	m := newMetricsWriter(w, now)
	defer m.w.Flush()

	labels := func(u containerUsage, extra ...string) []string {
		id := fakeContainerID(u.pod, u.container.Name)
		l := []string{"container", u.container.Name}
		l = append(l, extra...)
		return append(l,
			"id", cgroupID(u.pod, id),
			"image", u.container.Image,
			"name", id,
			"namespace", u.pod.Namespace,
			"pod", u.pod.Name)
	}
	m.family("container_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed in seconds.")
	for _, u := range usage {
		m.sample("container_cpu_usage_seconds_total", u.cpuTotal, labels(u, "cpu", "total")...)
	}
	m.family("container_memory_working_set_bytes", "gauge", "Current working set in bytes.")
	for _, u := range usage {
		m.sample("container_memory_working_set_bytes", u.memory, labels(u)...)
	}
	// Usage counts the page cache on top of the working set, RSS a part of it.
	m.family("container_memory_usage_bytes", "gauge", "Current memory usage in bytes, including all memory regardless of when it was accessed")
	for _, u := range usage {
		m.sample("container_memory_usage_bytes", float64(int64(u.memory*1.25)), labels(u)...)
	}
	m.family("container_memory_rss", "gauge", "Size of RSS in bytes.")
	for _, u := range usage {
		m.sample("container_memory_rss", float64(int64(u.memory*0.8)), labels(u)...)
	}
	m.family("container_spec_memory_limit_bytes", "gauge", "Memory limit for the container.")
	for _, u := range usage {
		limit := 0.0
		if q, ok := u.container.Resources.Limits[corev1.ResourceMemory]; ok {
			limit = q.AsApproximateFloat64()
		}
		m.sample("container_spec_memory_limit_bytes", limit, labels(u)...)
	}
	m.family("container_spec_cpu_shares", "gauge", "CPU share of the container.")
	for _, u := range usage {
		// The kubelet turns a CPU request into cgroup shares: 1024 per core,
		// at least 2.
		shares := 2.0
		if q, ok := u.container.Resources.Requests[corev1.ResourceCPU]; ok {
			shares = max(2, float64(q.MilliValue()*1024/1000))
		}
		m.sample("container_spec_cpu_shares", shares, labels(u)...)
	}
	m.family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds.")
	for _, u := range usage {
		m.sample("container_start_time_seconds", float64(u.start.Unix()), labels(u)...)
	}
	m.family("container_last_seen", "gauge", "Last time a container was seen by the exporter")
	for _, u := range usage {
		m.sample("container_last_seen", float64(now.Unix()), labels(u)...)
	}
	machine := []string{"boot_id", s.node.name, "machine_id", s.node.name, "system_uuid", s.node.name}
	m.family("machine_cpu_cores", "gauge", "Number of logical CPU cores.")
	m.sample("machine_cpu_cores", nodeCPUCores, machine...)
	m.family("machine_memory_bytes", "gauge", "Amount of memory installed on the machine.")
	m.sample("machine_memory_bytes", nodeMemoryBytes, machine...)
}
