"""A standalone worker (one thread) that SIGKILLs itself at one publication step of the first
job it publishes: ``python publish_killer.py <step>`` (steps: ``staged``, ``intent``,
``renamed:<i>``, ``renamed``). Settings from the ``ASSEMBLY_SERVICE_*`` environment."""

from __future__ import annotations

import os
import signal
import sys

from assembly_service import jobs, logs
from assembly_service.config import Settings
from assembly_service.worker import run_standalone


def main() -> int:
    step = sys.argv[1]

    def hook(name: str) -> None:
        if name == step:
            logs.event("test.kill", step=name)
            for h in logs.LOGGER.handlers:
                h.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    jobs.PUBLISH_HOOK = hook
    logs.configure("INFO")
    return run_standalone(Settings.from_env(), threads=1)


if __name__ == "__main__":
    sys.exit(main())
