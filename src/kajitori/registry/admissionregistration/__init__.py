"""admissionregistration.k8s.io resources."""
