"""Named crash points for the crash-safety tests.

``RFM_CRASH_AT=<point>`` makes the process kill itself with SIGKILL when it reaches that
point, as a machine failure or an operator's ``kill -9`` would, at a moment the test
chooses. Unset (always, outside the tests), ``point`` does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "RFM_CRASH_AT"


def point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
