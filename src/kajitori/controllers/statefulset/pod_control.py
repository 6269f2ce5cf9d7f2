"""Writing a StatefulSet's pods and claims, with upstream's events (stateful_pod_control.go).

* ``create_pod``: the pod's missing claims first (a claim is never
  recreated or changed: it outlives its pods), then the pod, then the claim
  owner references the retention policy wants;
* ``update_pod``: restore identity and storage (creating missing claims) and
  claim owners, then write the pod, retrying conflicts on a fresh copy;
* ``delete_pod``;
* ``ensure_claims`` / ``fix_retention`` for Pending and condemned pods.

Events name the verb, the pod and the set as upstream's recordPodEvent /
recordClaimEvent: ``SuccessfulCreate`` "create Pod web-0 in StatefulSet web
successful", "create Claim data-web-0 Pod web-0 in StatefulSet web
success"; failures are ``Failed<Verb>`` warnings. Claims are read from the
PVC informer's cache; claims are changed with ``update`` (the
statefulset-controller role grants update, not patch, on claims).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kajitori.client import events, rest
from kajitori.controllers.statefulset import utils

Object = dict[str, Any]
ClaimLookup = Callable[[str, str], Object | None]
UPDATE_RETRIES = 5


class ClaimError(Exception):
    """A claim could not be created, or is being deleted (the pod must wait)."""


class StatefulPodControl:
    """Pods and claims through the API as the controller, events on the set."""

    def __init__(
        self, client: rest.Client, recorder: events.EventRecorder, claims: ClaimLookup
    ) -> None:
        self.client = client
        self.recorder = recorder
        self.claims = claims

    # ----- pods ------------------------------------------------------------------------

    async def create_pod(self, sts: Object, pod: Object) -> bool:
        """Claims, then the pod; False when the pod already exists (our cache is behind)."""
        try:
            await self.create_claims(sts, pod)
        except ClaimError as exc:
            self._pod_event("create", sts, pod, str(exc))
            raise
        namespace = sts["metadata"].get("namespace", "")
        try:
            created = await self.client.create(rest.PODS, pod, namespace=namespace)
        except rest.ApiError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                return False
            self._pod_event("create", sts, pod, exc.message)
            raise
        await self.fix_retention(sts, created)
        self._pod_event("create", sts, pod, None)
        return True

    async def update_pod(self, sts: Object, pod: Object) -> None:
        """Identity, storage and claim owners as ``sts`` wants them."""
        pod = copy.deepcopy(pod)
        for attempt in range(UPDATE_RETRIES):
            dirty = False
            if not utils.identity_matches(sts, pod):
                utils.update_identity(sts, pod)
                dirty = True
            if not utils.storage_matches(sts, pod):
                utils.update_storage(sts, pod)
                dirty = True
                await self.create_claims(sts, pod)
            await self.fix_retention(sts, pod)
            if not dirty:
                return
            try:
                await self.client.update(rest.PODS, pod)
            except rest.ApiError as exc:
                if not exc.conflict or attempt == UPDATE_RETRIES - 1:
                    self._pod_event("update", sts, pod, exc.message)
                    raise
                meta = pod["metadata"]
                pod = await self.client.get(rest.PODS, meta["name"], namespace=meta["namespace"])
                continue
            self._pod_event("update", sts, pod, None)
            return

    async def delete_pod(self, sts: Object, pod: Object) -> None:
        """Delete ``pod`` (precondition: its uid); already gone is not an error."""
        meta = pod["metadata"]
        try:
            await self.client.delete(
                rest.PODS,
                meta["name"],
                namespace=meta.get("namespace", ""),
                uid=meta.get("uid", ""),
            )
        except rest.ApiError as exc:
            if exc.not_found or exc.code == 409:
                return
            self._pod_event("delete", sts, pod, exc.message)
            raise
        self._pod_event("delete", sts, pod, None)

    # ----- claims ----------------------------------------------------------------------

    async def create_claims(self, sts: Object, pod: Object) -> None:
        """Create the pod's claims that do not exist yet; raise ``ClaimError`` on failure."""
        namespace = sts["metadata"].get("namespace", "")
        problems = []
        for _, claim in utils.claims_for(sts, utils.ordinal_of(pod)):
            name = claim["metadata"]["name"]
            found = self.claims(namespace, name)
            if found is not None:
                if utils.is_terminating(found):
                    problems.append(f"pvc {name} is being deleted")
                continue
            # The set's reference (whenDeleted: Delete) can be given at once; the
            # pod's must wait until the pod exists and has a uid.
            utils.update_claim_owners(sts, pod, claim)
            try:
                await self.client.create(rest.PERSISTENTVOLUMECLAIMS, claim, namespace=namespace)
            except rest.ApiError as exc:
                if exc.code == 409 and exc.reason == "AlreadyExists":
                    continue
                problems.append(f"failed to create PVC {name}: {exc.message}")
                self._claim_event(sts, pod, name, exc.message)
                continue
            self._claim_event(sts, pod, name, None)
        if problems:
            raise ClaimError("; ".join(problems))

    async def ensure_claims(self, sts: Object, pod: Object) -> None:
        await self.create_claims(sts, pod)
        await self.fix_retention(sts, pod)

    async def fix_retention(self, sts: Object, pod: Object) -> None:
        """Give each cached claim of ``pod`` the owner references the policy wants."""
        namespace = sts["metadata"].get("namespace", "")
        for _, template_claim in utils.claims_for(sts, utils.ordinal_of(pod)):
            found = self.claims(namespace, template_claim["metadata"]["name"])
            if found is None or utils.claim_owners_match(sts, pod, found):
                continue
            claim = copy.deepcopy(found)
            if utils.update_claim_owners(sts, pod, claim):
                await self.client.update(rest.PERSISTENTVOLUMECLAIMS, claim, namespace=namespace)

    # ----- events ----------------------------------------------------------------------

    def _pod_event(self, verb: str, sts: Object, pod: Object, error: str | None) -> None:
        name, owner = pod["metadata"]["name"], sts["metadata"]["name"]
        if error is None:
            message = f"{verb} Pod {name} in StatefulSet {owner} successful"
            self.recorder.event(sts, "Normal", f"Successful{verb.title()}", message)
        else:
            message = f"{verb} Pod {name} in StatefulSet {owner} failed error: {error}"
            self.recorder.event(sts, "Warning", f"Failed{verb.title()}", message)

    def _claim_event(self, sts: Object, pod: Object, claim: str, error: str | None) -> None:
        name, owner = pod["metadata"]["name"], sts["metadata"]["name"]
        if error is None:
            message = f"create Claim {claim} Pod {name} in StatefulSet {owner} success"
            self.recorder.event(sts, "Normal", "SuccessfulCreate", message)
        else:
            message = (
                f"create Claim {claim} for Pod {name} in StatefulSet {owner} failed error: {error}"
            )
            self.recorder.event(sts, "Warning", "FailedCreate", message)
