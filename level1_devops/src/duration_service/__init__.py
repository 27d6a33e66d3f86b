"""duration_service: level 1 of the ladder, the trip-duration model behind a FastAPI service.

``create_app()`` builds the app; ``duration-serve`` runs it with uvicorn. Nothing happens at
import time: the model is loaded when the app starts.
"""

from duration_service.config import Settings
from duration_service.main import create_app
from duration_service.version import __version__

__all__ = ["Settings", "__version__", "create_app"]
