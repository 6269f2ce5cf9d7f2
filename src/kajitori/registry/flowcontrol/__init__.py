"""flowcontrol.apiserver.k8s.io/v1 in the API server (upstream: pkg/registry/flowcontrol).

``flowschemas`` and ``prioritylevelconfigurations`` declare the two
resources; ``ensurer`` keeps the bootstrap configuration in the cluster and
``dangling`` keeps each FlowSchema's ``Dangling`` condition current, the two
things upstream's API server does with them besides serving them.
"""
