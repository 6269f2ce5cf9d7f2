"""The three patch types of the Kubernetes API, as pure functions on decoded JSON.

Owns: applying a PATCH body to the current object for
``application/json-patch+json`` (``json_patch``), ``application/merge-patch+json``
(``merge_patch``) and ``application/strategic-merge-patch+json``
(``strategic``, ordering in ``order``). Nothing here does I/O, decodes bytes,
or decides whether a patch type is allowed for a resource (the PATCH handler
answers 415 for strategic merge on custom resources). Every function returns
a new object and leaves its arguments untouched.

Upstream applies these with evanphx/json-patch v4 and apimachinery's
strategicpatch; we follow their behaviour, quirks included, because kubectl
and controllers depend on it. After patching, upstream decodes the result into
the typed object (dropping nulls and unknown fields); that round trip is the
handler's job, not ours.

Failures raise ``PatchError`` with upstream's message and the HTTP status
kube-apiserver answers with (``pkg/endpoints/handlers/patch.go``);
``PatchError.to_status_error()`` builds the ``metav1.Status``::

    patch type      failure                                   code  reason        message sent
    json patch      body is not a list of operations          400   BadRequest    decoder's text
    json patch      more than 10,000 operations               413   RequestEntityTooLarge
    json patch      any failing operation (missing path,      422   Invalid       "the server rejected our
                    failed test, bad index, unknown op)                           request due to an error in
                                                                                  our request" (detail dropped)
    merge patch     body is null or a scalar                  400   BadRequest    "Invalid JSON Patch"
    strategic       malformed $deleteFromPrimitiveList,       400   BadRequest    the error text
                    $retainKeys or $setElementOrder
    strategic       list of lists                             422   Invalid       generic text, as above
    strategic       anything else (missing merge key,         500   (none)        the error text, e.g. "map:
                    unknown $patch, mixed element types)                          map[image:v2] does not contain
                                                                                  declared merge key: name"

The 500s are upstream's: its strategic merge errors reach the handler as plain
Go errors, which the API renders as a 500 with an empty reason.
"""

from kajitori.machinery.patching.common import PatchError
from kajitori.machinery.patching.json_patch import apply_json_patch
from kajitori.machinery.patching.merge_patch import apply_merge_patch
from kajitori.machinery.patching.strategic import apply_strategic_merge_patch

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
]
