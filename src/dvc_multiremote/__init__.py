"""Keep a DVC project's data safe and reachable on several remotes at once."""

__version__ = "0.1.0"

import os as _os

# DVC's usage analytics would phone home; this tool never sends traffic it was not asked to.
_os.environ.setdefault("DVC_NO_ANALYTICS", "1")
