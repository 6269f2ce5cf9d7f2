"""The Job controller (upstream: pkg/controller/job), split by concern.

* ``controller.py`` — informers, work queues, and the I/O of a sync;
* ``planning.py`` — pure decisions over one sync's context;
* ``status.py`` — conditions, uncounted pods, the sync context;
* ``policy.py`` — failure policy, back-off, completion indexes, success policy.
"""

from __future__ import annotations

from kajitori.controllers.job.controller import JobController

__all__ = ["JobController"]
