"""Mailbox Manager entrypoint: page config and st.navigation over pages/.

The page list lives in ui.navigation.run_app, because a page reached by a deep link on
a fresh server must be able to dispatch through the same navigation (see there).
"""

from ui.navigation import run_app

run_app()
