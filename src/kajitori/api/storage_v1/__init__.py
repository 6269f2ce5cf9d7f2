"""The storage.k8s.io/v1 API: defaulting (defaults.py) and validation (validation/)."""

# A StorageClass is the cluster default when either annotation is "true"
# (upstream's storageutil.IsDefaultAnnotation reads both).
IS_DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"


def is_default_class(obj: dict[str, object]) -> bool:
    """Whether a StorageClass is marked as the cluster default."""
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict):
        return False
    return "true" in (
        annotations.get(IS_DEFAULT_CLASS_ANNOTATION),
        annotations.get(BETA_IS_DEFAULT_CLASS_ANNOTATION),
    )
