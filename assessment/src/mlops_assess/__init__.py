"""mlops-assess: place a repository on the MLOps maturity ladder from static evidence.

``mlops_assess.assess.assess(path)`` reads a folder (never imports or runs it) and returns an
:class:`~mlops_assess.assess.Assessment`; ``mlops-assess PATH`` prints it.
"""

__version__ = "0.1.0"
