"""Operations: the sandbox venue, benchmarks, cluster, Prometheus and Grafana configs, bundled data."""
