package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// The apiserver refuses to proxy to a node whose address is not global
// unicast (`/api/v1/nodes/NAME/proxy/...` answers "address not allowed" for
// loopback), yet every fake kubelet listens on loopback. So each node also
// reports an ExternalIP from TEST-NET-3 (203.0.113.0/24, reserved for
// documentation and never routed), the apiserver reaches kubelets at that
// address (--kubelet-preferred-address-types=ExternalIP), and all of its
// traffic to the cluster network (kubelets, aggregated APIs, webhooks) goes
// through this HTTP CONNECT proxy (--egress-selector-config-file), which
// rewrites 203.0.113.N to the node's loopback address 127.0.1.N and lets
// loopback destinations through. Any other destination is refused, so no
// packet ever leaves the machine.

const (
	externalNetPrefix = "203.0.113."
	internalNetPrefix = "127.0.1."
)

func nodeInternalIP(i int) string { return fmt.Sprintf("%s%d", internalNetPrefix, i+1) }
func nodeExternalIP(i int) string { return fmt.Sprintf("%s%d", externalNetPrefix, i+1) }

// egressTarget maps a CONNECT destination to the address actually dialled.
func egressTarget(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(host, externalNetPrefix) {
		return net.JoinHostPort(internalNetPrefix+strings.TrimPrefix(host, externalNetPrefix), port), nil
	}
	if host == "localhost" {
		return hostport, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return hostport, nil
	}
	return "", fmt.Errorf("%s is outside the local cluster's network", host)
}

// egressConfig is the apiserver's EgressSelectorConfiguration sending
// cluster traffic through the proxy's socket.
func egressConfig(socket string) string {
	return fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
  - name: cluster
    connection:
      proxyProtocol: HTTPConnect
      transport:
        uds:
          udsName: %s
`, socket)
}

// serveEgress runs the proxy on a Unix socket until ctx ends.
func serveEgress(ctx context.Context, socket string) error {
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tunnel(ctx, conn)
		}()
	}
}

func tunnel(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		fmt.Fprintf(conn, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	target, err := egressTarget(req.Host)
	if err != nil {
		klog.InfoS("egress refused", "destination", req.Host, "err", err)
		fmt.Fprintf(conn, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	dialer := net.Dialer{Timeout: 10 * time.Second}
	upstream, err := dialer.DialContext(ctx, "tcp", target)
	if err != nil {
		fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer upstream.Close()
	if _, err := fmt.Fprintf(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// The client speaks TLS only after the 200, but whatever the reader
		// already buffered belongs to the tunnel.
		_, _ = io.Copy(upstream, br)
		if c, ok := upstream.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(conn, upstream)
		if c, ok := conn.(*net.UnixConn); ok {
			_ = c.CloseWrite()
		}
		done <- struct{}{}
	}()
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}
