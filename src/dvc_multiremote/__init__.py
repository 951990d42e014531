"""Keep a DVC project's data safe and reachable on several remotes at once."""

__version__ = "0.1.0"
