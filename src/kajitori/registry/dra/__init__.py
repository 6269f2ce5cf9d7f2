"""resource.k8s.io resources in the API server (upstream: pkg/registry/resource).

Named ``dra`` (Dynamic Resource Allocation) because ``registry/resource.py``
already holds ``ResourceInfo``: a ``registry/resource/`` package would hide it.
"""
