"""Real HTTP servers on 127.0.0.1 for tests and benchmarks: a DagsHub-like DVC remote, moto S3,
and a fault-injecting reverse proxy that can act like Backblaze B2.

pytest puts ``tests/`` on ``sys.path``, so tests import ``servers``; code run from the project
root (e.g. ``bench/``) can import ``tests.servers``.
"""

from .dagshub import DagsHubRemoteServer, RequestRecord
from .faults import Fault, FaultProxy, ProxyRecord, dead_port_url
from .moto_s3 import MotoS3, s3_client

__all__ = [
    "DagsHubRemoteServer",
    "Fault",
    "FaultProxy",
    "MotoS3",
    "ProxyRecord",
    "RequestRecord",
    "dead_port_url",
    "s3_client",
]
