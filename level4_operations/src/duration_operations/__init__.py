"""duration_operations: level 4 of the ladder, the closed loop.

Production metrics read from the level-3 router (drift, live RMSE from feedback, age, new
months) trigger a retrain on production data through level 2's pipeline; the retrained
version must beat the champion on recent rides, then rolls out through the router's control
API (shadow, canary stages, promotion), each stage decided by the always-valid A/B test.
``duration-operate`` runs it; every reading and decision is written to the router's history,
to the MLflow version's tags and to Prometheus metrics.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duration-operations")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
