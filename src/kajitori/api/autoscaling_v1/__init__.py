"""autoscaling/v1: HorizontalPodAutoscaler defaulting and conversion to and from autoscaling/v2."""
