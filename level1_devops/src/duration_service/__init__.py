"""duration_service: level 1 of the ladder, the trip-duration model behind a FastAPI service.

``create_app()`` builds the app; ``duration-serve`` runs it with uvicorn. Nothing happens at
import time: the model is loaded when the app starts.
"""

from importlib.metadata import PackageNotFoundError, version

from duration_service.config import Settings
from duration_service.main import create_app

try:
    __version__ = version("duration-service")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Settings", "create_app"]
