"""The standard inference protocols, beside the service's own ``/predict``.

- :mod:`~duration_service.protocols.rides`: what every protocol shares: reading a JSON body,
  validating rides with :class:`~duration_service.schemas.Ride` (the rule of ``/predict``),
  and :class:`ProtocolError`, the 4xx/5xx a protocol answers in its own error format.
- :mod:`~duration_service.protocols.mlflow_scoring`: MLflow's scoring protocol
  (``POST /invocations``, what ``mlflow models serve`` answers).
- :mod:`~duration_service.protocols.open_inference`: the Open Inference Protocol V2 (KServe,
  Seldon Core 2, MLServer, Triton), JSON tensors and Triton's binary tensor extension.
- :mod:`~duration_service.protocols.scoring`: the :class:`Scorer` a protocol route calls;
  level 1 scores with its one model, level 3's router with its traffic split.

Nothing here knows HTTP frameworks: the routes (``api/routes/mlflow_protocol.py`` and
``api/routes/open_inference.py``) hand bytes in and get bodies and statuses out.
"""

from duration_service.protocols.rides import ProtocolError
from duration_service.protocols.scoring import Scored, Scorer

__all__ = ["ProtocolError", "Scored", "Scorer"]
