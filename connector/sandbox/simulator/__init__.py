"""A faithful local stand-in for the Sequence API (WS, SSE and REST on one port).

See ``server.py`` for the process, ``feed.py`` / ``trading.py`` /
``lifecycle.py`` for what is generated, ``bus.py`` for buffers and Gap
events, ``rest.py`` for REST shapes and ``faults.py`` for chaos knobs.
"""

from connector.sandbox.simulator.config import SimulatorConfig
from connector.sandbox.simulator.faults import Faults
from connector.sandbox.simulator.ledger import Ledger
from connector.sandbox.simulator.server import Simulator, run_simulator

__all__ = ["Faults", "Ledger", "Simulator", "SimulatorConfig", "run_simulator"]
