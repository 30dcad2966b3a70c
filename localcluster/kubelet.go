package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// The kubelet's HTTPS API as far as the rest of the cluster uses it: the
// apiserver's node proxy and `pods/log`, metrics-server and Prometheus.
// Callers authenticate and are authorized the way a kubelet with webhook
// authentication and authorization does it: a client certificate signed by
// the cluster CA or a bearer token checked with a TokenReview, then a
// SubjectAccessReview on a subresource of the node.

// kubeletServer serves one fake node's kubelet endpoints.
type kubeletServer struct {
	node  *fakeNode
	authn authenticator.Request
	authz authorizer.Authorizer
}

// newKubeletServer builds the delegated authentication and authorization of
// a kubelet; client makes the TokenReviews and SubjectAccessReviews with the
// node's own credentials, as a kubelet does.
func newKubeletServer(node *fakeNode, client kubernetes.Interface, caPEM []byte) (*kubeletServer, error) {
	clientCA, err := dynamiccertificates.NewStaticCAContent("client-ca", caPEM)
	if err != nil {
		return nil, err
	}
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:            client.AuthenticationV1(),
		TokenAccessReviewTimeout:           10 * time.Second,
		WebhookRetryBackoff:                options.DefaultAuthWebhookRetryBackoff(),
		CacheTTL:                           2 * time.Minute,
		ClientCertificateCAContentProvider: clientCA,
	}.New()
	if err != nil {
		return nil, err
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		// The kubelet's defaults: a grant is remembered for five minutes, a
		// refusal for thirty seconds.
		AllowCacheTTL:       5 * time.Minute,
		DenyCacheTTL:        30 * time.Second,
		WebhookRetryBackoff: options.DefaultAuthWebhookRetryBackoff(),
	}.New()
	if err != nil {
		return nil, err
	}
	return &kubeletServer{node: node, authn: authn, authz: authz}, nil
}

func (s *kubeletServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("GET /metrics/resource", s.serveResourceMetrics)
	mux.HandleFunc("GET /metrics/cadvisor", s.serveCadvisorMetrics)
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	return s.authenticated(mux)
}

// subresource maps a request path to the node subresource a kubelet checks
// it against.
func subresource(path string) string {
	switch {
	case path == "/stats" || strings.HasPrefix(path, "/stats/"):
		return "stats"
	case path == "/metrics" || strings.HasPrefix(path, "/metrics/"):
		return "metrics"
	case path == "/logs" || strings.HasPrefix(path, "/logs/"):
		return "log"
	default:
		return "proxy"
	}
}

func verb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	default:
		return "get"
	}
}

func (s *kubeletServer) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, ok, err := s.authn.AuthenticateRequest(r)
		if err != nil {
			klog.V(2).InfoS("kubelet authentication failed", "node", s.node.name, "err", err)
		}
		if !ok {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := authorizer.AttributesRecord{
			User:            resp.User,
			Verb:            verb(r.Method),
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     subresource(r.URL.Path),
			Name:            s.node.name,
			ResourceRequest: true,
			Path:            r.URL.Path,
		}
		decision, reason, err := s.authz.Authorize(r.Context(), attrs)
		if err != nil {
			klog.ErrorS(err, "kubelet authorization failed", "node", s.node.name, "user", resp.User.GetName())
		}
		if decision != authorizer.DecisionAllow {
			msg := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource=%s)",
				resp.User.GetName(), attrs.Verb, attrs.Resource, attrs.Subresource)
			klog.V(2).InfoS(msg, "node", s.node.name, "reason", reason)
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listen binds the node's kubelet port on its InternalIP: a free port, since
// every fake node shares the machine.
func (s *kubeletServer) listen(certFile, keyFile string) (net.Listener, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", net.JoinHostPort(s.node.internalIP(), "0"))
	if err != nil {
		return nil, err
	}
	return tls.NewListener(tcp, &tls.Config{
		Certificates: []tls.Certificate{cert},
		// The certificate is verified by the authenticator, against the
		// cluster CA; a caller without one may still present a token.
		ClientAuth: tls.RequestClientCert,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}), nil
}

func (s *kubeletServer) serve(ctx context.Context, l net.Listener) {
	srv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "nodes: %s: kubelet server: %v\n", s.node.name, err)
	}
}

// pod returns a pod bound to this node from the node's informer cache.
func (s *kubeletServer) pod(namespace, name string) (*corev1.Pod, bool) {
	obj, exists, err := s.node.pods.GetByKey(namespace + "/" + name)
	if err != nil || !exists {
		return nil, false
	}
	return obj.(*corev1.Pod), true
}

// runningPods lists the pods of this node whose containers run.
func (s *kubeletServer) runningPods() []*corev1.Pod {
	var pods []*corev1.Pod
	for _, obj := range s.node.pods.List() {
		pod := obj.(*corev1.Pod)
		if pod.Status.Phase == corev1.PodRunning {
			pods = append(pods, pod)
		}
	}
	return pods
}

// containerStart is when a container of the pod started running, if it runs.
func containerStart(pod *corev1.Pod, container string) (time.Time, bool) {
	for _, st := range pod.Status.ContainerStatuses {
		if st.Name == container && st.State.Running != nil {
			return st.State.Running.StartedAt.Time, true
		}
	}
	return time.Time{}, false
}
