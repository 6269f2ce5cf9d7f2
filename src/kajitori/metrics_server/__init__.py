"""kajitori's metrics-server: resource usage scraped from kubelets, for ``metrics.k8s.io``.

Upstream's metrics-server (kubernetes-sigs/metrics-server) is a separate
deployment behind a remote APIService. kajitori runs its equivalent inside the
API server process: ``scraper.py`` lists Nodes through the API and scrapes
each kubelet's ``/metrics/resource`` every ``--metric-resolution`` (15 s);
``prometheus.py`` parses the text; ``storage.py`` keeps the last two points of
every node and container and turns them into usage (metrics-server's
pkg/storage). The API side (``registry/metrics``) reads that storage through
a protocol of its own, so this package is a component like the controllers:
it reaches the API only through ``kajitori.client``.
"""
