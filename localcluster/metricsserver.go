package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strconv"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
	metricsserver "sigs.k8s.io/metrics-server/cmd/metrics-server/app"
)

// metrics-server (sigs.k8s.io/metrics-server) runs from this same binary: it
// scrapes every fake kubelet's /metrics/resource and serves the
// metrics.k8s.io API that `kubectl top` and HorizontalPodAutoscalers read,
// through the apiserver's aggregation layer.

func runMetricsServer(args []string) int {
	return runUpstream(func() *cobra.Command {
		return metricsserver.NewMetricsServerCommand(genericapiserver.SetupSignalHandler())
	}, args)
}

const (
	metricsServerUser    = "system:metrics-server"
	metricsServerService = "metrics-server"
	// The aggregator verifies the serving certificate against this name.
	metricsServerDNSName = metricsServerService + "." + metav1.NamespaceSystem + ".svc"
	// The apiserver's client identity towards kubelets.
	kubeletClientUser = "kube-apiserver-kubelet-client"
	metricsAPIService = "v1beta1.metrics.k8s.io"
)

// bootstrapObjects creates what the apiserver and metrics-server need once
// the apiserver runs: their rights on kubelets and on the API, and the
// Service the metrics API is registered with.
func bootstrapObjects(ctx context.Context, client kubernetes.Interface, metricsPort int) error {
	user := func(name string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}
	}
	clusterRoleRef := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	}
	clusterRoles := []*rbacv1.ClusterRole{
		{
			// What metrics-server reads: kubelets' metrics, and the nodes
			// and pods it reports on.
			ObjectMeta: metav1.ObjectMeta{Name: metricsServerUser},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		{
			// Whoever may view a namespace may read its pods' metrics.
			ObjectMeta: metav1.ObjectMeta{
				Name: "system:aggregated-metrics-reader",
				Labels: map[string]string{
					"rbac.authorization.k8s.io/aggregate-to-view":  "true",
					"rbac.authorization.k8s.io/aggregate-to-edit":  "true",
					"rbac.authorization.k8s.io/aggregate-to-admin": "true",
				},
			},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"metrics.k8s.io"}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
	}
	for _, role := range clusterRoles {
		if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRole %s: %w", role.Name, err)
		}
	}
	clusterBindings := []*rbacv1.ClusterRoleBinding{
		{
			// The apiserver's requests to kubelets (logs, node proxy) are
			// authorized by the kubelets like anyone else's.
			ObjectMeta: metav1.ObjectMeta{Name: "berth:apiserver-kubelet-api-admin"},
			RoleRef:    clusterRoleRef("system:kubelet-api-admin"),
			Subjects:   user(kubeletClientUser),
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: metricsServerUser},
			RoleRef:    clusterRoleRef(metricsServerUser),
			Subjects:   user(metricsServerUser),
		},
		{
			// metrics-server authenticates and authorizes its own callers
			// through TokenReviews and SubjectAccessReviews.
			ObjectMeta: metav1.ObjectMeta{Name: "metrics-server:system:auth-delegator"},
			RoleRef:    clusterRoleRef("system:auth-delegator"),
			Subjects:   user(metricsServerUser),
		},
	}
	for _, binding := range clusterBindings {
		if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRoleBinding %s: %w", binding.Name, err)
		}
	}
	// metrics-server reads the front proxy's CA and allowed names from the
	// extension-apiserver-authentication ConfigMap.
	authReader := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-server-auth-reader", Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "extension-apiserver-authentication-reader"},
		Subjects:   user(metricsServerUser),
	}
	if _, err := client.RbacV1().RoleBindings(metav1.NamespaceSystem).Create(ctx, authReader, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RoleBinding %s: %w", authReader.Name, err)
	}

	// With no kube-proxy a ClusterIP leads nowhere, and an Endpoints object
	// may not hold a loopback address; an ExternalName Service makes the
	// aggregator dial metrics-server's loopback address directly (through
	// the egress proxy, which lets loopback through).
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: metricsServerService, Namespace: metav1.NamespaceSystem},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports:        []corev1.ServicePort{{Name: "https", Port: int32(metricsPort)}},
		},
	}
	if _, err := client.CoreV1().Services(metav1.NamespaceSystem).Create(ctx, service, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Service %s: %w", service.Name, err)
	}
	return nil
}

// registerMetricsAPI registers metrics-server as the metrics.k8s.io API. It
// is done once metrics-server serves: the aggregator backs off further after
// each failed check of a new APIService, which would delay its availability.
func registerMetricsAPI(ctx context.Context, agg aggregator.Interface, caPEM []byte, metricsPort int) error {
	apiService := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: metricsAPIService},
		Spec: apiregistrationv1.APIServiceSpec{
			Service: &apiregistrationv1.ServiceReference{
				Namespace: metav1.NamespaceSystem,
				Name:      metricsServerService,
				Port:      ptr.To(int32(metricsPort)),
			},
			Group:                "metrics.k8s.io",
			Version:              "v1beta1",
			CABundle:             caPEM,
			GroupPriorityMinimum: 100,
			VersionPriority:      100,
		},
	}
	if _, err := agg.ApiregistrationV1().APIServices().Create(ctx, apiService, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating APIService %s: %w", apiService.Name, err)
	}
	return nil
}

// serving succeeds once a TLS server answers HTTP at url, whatever the
// status (metrics-server may not authorize an anonymous caller).
func serving(ctx context.Context, url string, caPEM []byte) error {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// metricsAPIAvailable succeeds once the aggregator has reached metrics-server.
func metricsAPIAvailable(ctx context.Context, agg aggregator.Interface) error {
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, metricsAPIService, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, c := range svc.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			if c.Status == apiregistrationv1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("%s not available: %s: %s", metricsAPIService, c.Reason, c.Message)
		}
	}
	return fmt.Errorf("%s has no Available condition yet", metricsAPIService)
}

func metricsServerArgs(dir string, port int) []string {
	pki := func(name string) string { return clusterPath(dir, "pki", name) }
	kubeconfig := clusterPath(dir, "kubeconfigs", "metrics-server.kubeconfig")
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + pki("metrics-server.crt"),
		"--tls-private-key-file=" + pki("metrics-server.key"),
		"--kubelet-use-node-status-port",
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=" + pki("ca.crt"),
		// The shortest resolution metrics-server accepts, so that a new pod
		// shows in `kubectl top` within seconds; the request timeout must
		// stay under 90% of it.
		"--metric-resolution=10s",
		"--kubelet-request-timeout=5s",
		"--profiling=false",
	}
}
