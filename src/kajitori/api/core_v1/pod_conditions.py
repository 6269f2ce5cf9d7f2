"""The ``observedGeneration`` of the pod conditions that components other than the kubelet write.

KEP-5067 (PodObservedGenerationTracking, locked on since 1.35): whoever sets a
pod condition names the ``metadata.generation`` of the pod it acted on, as it
read that pod; upstream's ``CalculatePodConditionObservedGeneration`` is then
simply the pod's generation. The scheduler (``PodScheduled=False`` and
preemption's ``DisruptionTarget``), the node lifecycle and taint eviction
controllers, and the API server's pods/eviction and pods/binding use this
module; the kubelet stamps its own conditions in ``kubelet/status.py``.

Pure: no I/O, so every layer above ``api`` may use it.
"""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def observed_generation(pod: Object) -> int:
    """The generation a condition about ``pod`` speaks for; 0 (left unset) when it has none.

    A pod stored before pods had generations has none; upstream's zero value
    is then omitted from the condition, so it is here too.
    """
    generation = (pod.get("metadata") or {}).get("generation")
    if isinstance(generation, bool) or not isinstance(generation, int):
        return 0
    return max(generation, 0)


def observe(condition: Object, pod: Object) -> Object:
    """``condition`` (changed in place) carrying ``pod``'s generation, when it has one."""
    generation = observed_generation(pod)
    if generation:
        condition["observedGeneration"] = generation
    return condition
