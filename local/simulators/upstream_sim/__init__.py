"""Local simulator of the three upstream APIs the session broker calls.

* Avaturn Live (``POST/DELETE /api/v1/sessions``, the web SDK's ``GET /_sdk/v0/sessions``),
* OpenAI Realtime client secrets (``POST /v1/realtime/client_secrets``),
* Cartesia access tokens (``POST /access-token``),

each on its own port, plus a control API (``/_control/...``) on a fourth port for tests:
fault injection, a controllable clock, and a readable record of everything that happened.

Run ``python -m upstream_sim --help`` with ``local/simulators`` on ``PYTHONPATH``.
"""

from upstream_sim.config import SimConfig
from upstream_sim.server import Simulator

__all__ = ["SimConfig", "Simulator"]
__version__ = "1.0.0"
