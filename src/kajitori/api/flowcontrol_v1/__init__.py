"""flowcontrol.apiserver.k8s.io/v1: FlowSchema and PriorityLevelConfiguration.

``defaults`` and ``validation`` as upstream's pkg/apis/flowcontrol; ``bootstrap``
holds the configuration objects every API server keeps in the cluster
(upstream: apiserver/pkg/apis/flowcontrol/bootstrap), which validation needs
too (the mandatory objects' specs are fixed).
"""
