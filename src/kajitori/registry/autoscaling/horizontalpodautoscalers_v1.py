"""autoscaling/v1 HorizontalPodAutoscalers: the stored autoscaling/v2 objects in v1's shape.

The v2 declaration (strategy, status, table) served as autoscaling/v1
through ``Conversion`` (see ``api.autoscaling_v1.conversion`` for what v1 can
and cannot carry). Installed after v2, so v2 stays the group's preferred
version, as upstream; both list the short name ``hpa`` and the category
``all``, as upstream's discovery does (kubectl resolves them to the preferred
version).
"""

from __future__ import annotations

import dataclasses

from kajitori.api.autoscaling_v1 import conversion
from kajitori.registry import resource
from kajitori.registry.autoscaling import horizontalpodautoscalers as v2

RESOURCE = dataclasses.replace(
    v2.RESOURCE,
    version="v1",
    conversion=resource.Conversion(
        storage_group=v2.RESOURCE.group,
        storage_version=v2.RESOURCE.version,
        to_storage=conversion.upgrade,
        from_storage=conversion.downgrade,
        to_storage_undefaulted=conversion.upgrade_undefaulted,
    ),
)
