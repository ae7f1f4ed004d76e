package telemetry

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/sdk/metric"
)

// NewPrometheusMeterProvider returns a MeterProvider for WithMeterProvider whose
// metrics the returned handler serves in the Prometheus exposition format (mount it at
// /metrics). Each call has its own registry, so two engines in one process do not mix
// their counts. Shut the provider down when done.
func NewPrometheusMeterProvider() (*metric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("creating the Prometheus exporter: %w", err)
	}
	mp := metric.NewMeterProvider(metric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
