package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Each fake container "logs" one line every logInterval from the moment it
// started:
//
//	2026-01-02T15:04:05Z <namespace>/<pod> <container> line <n>
//
// with n counting from 0, so what a client reads is determined by the
// container's start time and the query alone.
const logInterval = 2 * time.Second

// The kubelet's timestamp prefix (timestamps=true): RFC 3339 with nanoseconds.
const logTimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

type logQuery struct {
	follow, timestamps, previous bool
	tailLines, limitBytes        int64 // -1 when not given
	since                        time.Time
}

// parseLogQuery reads the kubelet's log parameters: 400 for a value that
// does not parse, 422 for one that fails the PodLogOptions validation.
func parseLogQuery(q url.Values, now time.Time) (logQuery, int, error) {
	lq := logQuery{tailLines: -1, limitBytes: -1}
	for name, dst := range map[string]*bool{"follow": &lq.follow, "timestamps": &lq.timestamps, "previous": &lq.previous} {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return lq, http.StatusBadRequest, fmt.Errorf("unable to decode query: %s: %w", name, err)
			}
			*dst = b
		}
	}
	ints := map[string]int64{}
	for _, name := range []string{"tailLines", "limitBytes", "sinceSeconds"} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return lq, http.StatusBadRequest, fmt.Errorf("unable to decode query: %s: %w", name, err)
			}
			ints[name] = n
		}
	}
	if n, ok := ints["tailLines"]; ok {
		if n < 0 {
			return lq, http.StatusUnprocessableEntity, fmt.Errorf("tailLines: Invalid value: %d: must be greater than or equal to 0", n)
		}
		lq.tailLines = n
	}
	if n, ok := ints["limitBytes"]; ok {
		if n < 1 {
			return lq, http.StatusUnprocessableEntity, fmt.Errorf("limitBytes: Invalid value: %d: must be greater than 0", n)
		}
		lq.limitBytes = n
	}
	sinceSeconds, haveSeconds := ints["sinceSeconds"]
	sinceTime := q.Get("sinceTime")
	if haveSeconds && sinceTime != "" {
		return lq, http.StatusUnprocessableEntity, fmt.Errorf("at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if haveSeconds {
		if sinceSeconds < 1 {
			return lq, http.StatusUnprocessableEntity, fmt.Errorf("sinceSeconds: Invalid value: %d: must be greater than 0", sinceSeconds)
		}
		lq.since = now.Add(-time.Duration(sinceSeconds) * time.Second)
	}
	if sinceTime != "" {
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return lq, http.StatusBadRequest, fmt.Errorf("unable to decode query: sinceTime: %w", err)
		}
		lq.since = t
	}
	return lq, 0, nil
}

// containerLife is when a container started and, if it has ended, when.
func containerLife(pod *corev1.Pod, name string) (start, end time.Time, ok bool) {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, st := range statuses {
		if st.Name != name {
			continue
		}
		switch {
		case st.State.Running != nil:
			return st.State.Running.StartedAt.Time, time.Time{}, true
		case st.State.Terminated != nil:
			return st.State.Terminated.StartedAt.Time, st.State.Terminated.FinishedAt.Time, true
		}
	}
	return time.Time{}, time.Time{}, false
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// lineAt is the time of log line n.
func lineAt(start time.Time, n int64) time.Time {
	return start.Add(time.Duration(n) * logInterval)
}

// linesUpTo is the number of lines logged from start until t.
func linesUpTo(start, t time.Time) int64 {
	if t.Before(start) {
		return 0
	}
	return int64(t.Sub(start)/logInterval) + 1
}

// limitedWriter cuts the output after limit bytes, as the kubelet does for
// limitBytes, possibly in the middle of a line.
type limitedWriter struct {
	w     io.Writer
	limit int64 // -1: no limit
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.limit < 0 {
		return l.w.Write(p)
	}
	if l.limit == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.limit {
		p = p[:l.limit]
	}
	n, err := l.w.Write(p)
	l.limit -= int64(n)
	if err == nil && l.limit == 0 {
		err = io.EOF
	}
	return n, err
}

// serveContainerLogs is the kubelet's /containerLogs/{namespace}/{pod}/{container}.
func (s *kubeletServer) serveContainerLogs(w http.ResponseWriter, r *http.Request) {
	namespace, podName, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	now := time.Now()
	q, code, err := parseLogQuery(r.URL.Query(), now)
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	pod, ok := s.pod(namespace, podName)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %q does not exist", podName), http.StatusNotFound)
		return
	}
	if !hasContainer(pod, container) {
		http.Error(w, fmt.Sprintf("container %q not found in pod %q", container, podName), http.StatusNotFound)
		return
	}
	// No fake container ever restarts, so none has a previous instance.
	if q.previous {
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, podName), http.StatusBadRequest)
		return
	}
	start, end, ok := containerLife(pod, container)
	if !ok {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, podName), http.StatusBadRequest)
		return
	}

	logged := now
	if !end.IsZero() && end.Before(now) {
		logged = end
	}
	first, next := int64(0), linesUpTo(start, logged)
	if !q.since.IsZero() {
		first = linesUpTo(start, q.since.Add(-time.Nanosecond))
	}
	if q.tailLines >= 0 && next-q.tailLines > first {
		first = next - q.tailLines
	}

	w.Header().Set("Content-Type", "text/plain")
	out := &limitedWriter{w: w, limit: q.limitBytes}
	flush := func() { _ = http.NewResponseController(w).Flush() }
	write := func(n int64) error {
		t := lineAt(start, n)
		line := fmt.Sprintf("%s %s/%s %s line %d\n", t.UTC().Format(time.RFC3339), namespace, podName, container, n)
		if q.timestamps {
			line = t.UTC().Format(logTimestampFormat) + " " + line
		}
		_, err := io.WriteString(out, line)
		return err
	}
	for n := first; n < next; n++ {
		if err := write(n); err != nil {
			flush()
			return
		}
	}
	flush()
	if !q.follow || !end.IsZero() {
		return
	}
	// Follow: a new line at each tick until the client leaves or the
	// container stops running.
	for n := next; ; n++ {
		timer := time.NewTimer(time.Until(lineAt(start, n)))
		select {
		case <-r.Context().Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		current, ok := s.pod(namespace, podName)
		if !ok || current.UID != pod.UID || current.DeletionTimestamp != nil {
			return
		}
		if _, end, running := containerLife(current, container); !running || !end.IsZero() {
			return
		}
		if err := write(n); err != nil {
			flush()
			return
		}
		flush()
	}
}
