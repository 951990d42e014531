#!/usr/bin/env python3
"""The container's entrypoint (exec form, no shell: dash would drop the INPUT_* with hyphens)."""

import sys

from dvc_multiremote.action.main import main

if __name__ == "__main__":
    sys.exit(main())
