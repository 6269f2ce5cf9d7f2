"""metrics.k8s.io: NodeMetrics and PodMetrics, computed per request from scraped usage."""
