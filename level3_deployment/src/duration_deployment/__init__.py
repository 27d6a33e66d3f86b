"""duration_deployment: level 3 of the ladder, one-call deployment behind an A/B router.

``duration-router`` serves several registered model versions (variants) behind one prediction
API, split by weight with sticky assignment by ride id, logs every prediction, and moves the
MLflow aliases on promote and rollback. ``duration-deploy`` is the one call that deploys.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duration-deployment")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
