"""The networking.k8s.io/v1 API: defaulting (defaults.py) and validation (validation/)."""

# The pre-IngressClass way of choosing a controller; must agree with
# spec.ingressClassName when both are set.
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
