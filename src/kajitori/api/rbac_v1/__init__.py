"""The rbac.authorization.k8s.io/v1 API: defaulting (defaults.py) and validation (validation/).

Objects are stored and validated here; enforcement (the RBAC authorizer) lives
in ``kajitori.auth``.
"""

GROUP_NAME = "rbac.authorization.k8s.io"
