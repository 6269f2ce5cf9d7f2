"""The DaemonSet controller (upstream's pkg/controller/daemon), as a small package.

* ``placement`` — which nodes want a daemon pod, and the pod template pinned to one;
* ``planning`` — pure plans: manage, rolling update, status;
* ``revisions`` — the DaemonSet's ControllerRevisions (over ``common.history``);
* ``controller`` — informers, handlers and the sync that executes the plans.
"""

from kajitori.controllers.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
