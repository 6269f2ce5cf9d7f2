"""autoscaling/v2: HorizontalPodAutoscaler defaulting, validation and printing."""
