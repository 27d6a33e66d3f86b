"""ladder_testing: the test helpers shared by every level of the ladder.

See the modules: :mod:`~ladder_testing.net`, :mod:`~ladder_testing.processes`,
:mod:`~ladder_testing.programs`, :mod:`~ladder_testing.browser`, and the pytest fixtures of
:mod:`~ladder_testing.plugin`.
"""

from ladder_testing.net import free_port
from ladder_testing.processes import GRACEFUL, stop_process, wait_until_answers
from ladder_testing.programs import find_browser, require_program

__all__ = [
    "GRACEFUL",
    "find_browser",
    "free_port",
    "require_program",
    "stop_process",
    "wait_until_answers",
]
