"""The installed distribution's version (one place, so modules need not import the package)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duration-service")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
