"""autoscaling: HorizontalPodAutoscalers, stored as autoscaling/v2 and also served as autoscaling/v1."""
