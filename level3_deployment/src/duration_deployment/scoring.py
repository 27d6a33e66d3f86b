"""The router's :class:`~duration_service.protocols.Scorer`: the inference protocols' rides go
through the data plane like ``/predict``'s (traffic split sticky by ``ride_id``, fallback to the
champion, shadows, the prediction log, the A/B test), so level 1's protocol routes serve the
router unchanged. ``X-Model-Variant`` forces a variant as on ``/predict``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from duration_deployment.dataplane import DataPlane
from duration_deployment.errors import RouterError
from duration_deployment.routing import VARIANT_HEADER
from duration_service.protocols import ProtocolError, Scored
from duration_service.schemas import Ride


class RouterScorer:
    """Scores rides with the routing table's live variants.

    Args:
        dataplane: The router's data plane.
        model_name: The registered model's name (the protocols' model name).
    """

    def __init__(self, dataplane: DataPlane, model_name: str) -> None:
        self.dataplane = dataplane
        self.model_name = model_name

    def versions(self) -> list[str]:
        """The registered model versions the live variants serve (champion first)."""
        live = self.dataplane.manager.table.live
        return list(dict.fromkeys(v.model.version for v in live))

    def unavailable(self) -> str | None:
        """Why nothing can be scored: no live variant (None when one is)."""
        if self.dataplane.manager.table.live:
            return None
        return "no model is deployed: POST /deployments first"

    async def score(
        self,
        rides: Sequence[Ride],
        *,
        version: str | None,
        route: str,
        headers: Mapping[str, str],
    ) -> Scored:
        """Route ``rides`` like ``/predict``: by the traffic split, or to the variant named by
        the ``X-Model-Variant`` header; with ``version``, every ride goes to the live variant
        serving it. Forced rides are logged as such and left out of the A/B test.

        Raises:
            ProtocolError: 404 when no live variant serves ``version``, 409 when the header
                names no live variant; the data plane's errors with their statuses (503
                nothing deployed or every variant failed).
        """
        forced = headers.get(VARIANT_HEADER) or None
        if version is not None:
            live = self.dataplane.manager.table.live
            variant = next((v for v in live if v.model.version == version), None)
            if variant is None:
                served = ", ".join(self.versions()) or "none"
                raise ProtocolError(
                    404, f"model {self.model_name!r} has no live version {version!r} "
                    f"(serving: {served})",
                )  # fmt: skip
            forced = variant.name
        try:
            if len(rides) == 1:
                answers = [await self.dataplane.predict(rides[0], forced, route)]
            else:
                answers = (await self.dataplane.predict_batch(rides, forced, route)).predictions
        except RouterError as exc:
            raise ProtocolError(exc.status, str(exc), kind=exc.kind) from None
        return Scored(
            minutes=[a.duration for a in answers],
            model_versions=[a.model_version for a in answers],
            variants=[a.variant for a in answers],
        )
