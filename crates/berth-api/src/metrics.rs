use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

/// Request counts and latencies by route (the pattern, not the path, so that
/// label sets stay bounded) and status.
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<RouteLabels, Counter>,
    pub duration: Family<RouteLabels, Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RouteLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        registry.register(
            "berth_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "berth_http_request_duration_seconds",
            "Time to answer an HTTP request",
            duration.clone(),
        );
        Self { requests, duration }
    }
}
