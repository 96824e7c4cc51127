"""Connect account: where Google or Microsoft sends the browser back (?code=…&state=…)."""

from ui import connect
from ui.navigation import require_entrypoint

require_entrypoint()
connect.callback_page()
