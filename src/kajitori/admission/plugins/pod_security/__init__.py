"""PodSecurity admission: the Pod Security Standards (upstream's k8s.io/pod-security-admission).

``api`` (levels, versions, namespace labels), ``checks`` (one check per
control and policy version), ``evaluator`` (the checks of each level and
version, and the aggregated message) and ``admission`` (the plugin).
"""
