"""The discovery.k8s.io/v1 API: defaulting (defaults.py) and validation (validation/)."""

# The label that ties an EndpointSlice to the Service it serves; the
# EndpointSlice controller and kube-proxy select slices by it.
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
