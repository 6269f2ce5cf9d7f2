"""admissionregistration.k8s.io/v1: defaulting and validation of the admission configuration kinds."""
