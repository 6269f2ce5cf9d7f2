"""The StatefulSet controller (upstream's pkg/controller/statefulset), one concern per module.

* ``utils`` — identities, claims, revisions and retention rules (pure);
* ``control`` — what one sync does: the plan and the status (pure);
* ``pod_control`` — pods and claims through the API, with upstream's events;
* ``controller`` — informers, event handlers and ``sync``.
"""

from kajitori.controllers.statefulset.controller import StatefulSetController

__all__ = ["StatefulSetController"]
