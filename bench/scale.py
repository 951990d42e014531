"""Memory and time at scale: `verify` of 1,000,000 objects against a listing of 1,000,000 keys.

Nothing of that size is created on disk or in moto: the project holds one `.dir` manifest of N
synthetic entries, and a small S3 listing server of our own on 127.0.0.1 generates the
ListObjectsV2 pages on the fly (1% of the keys left out, so the report has work to do).
Run: python bench/scale.py [--sizes 100000,300000,1000000] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
BUCKET, PREFIX = "bucket", "store"
TARGET_RSS = 1024**3


MODIFIED = "2026-11-22T00:00:00.000Z"  # real listings carry one per key


def md5s(count: int) -> list[str]:
    return [hashlib.md5(str(i).encode()).hexdigest() for i in range(count)]


class Listing:
    """Sorted keys of a bucket, served page by page as S3's ListObjectsV2 does."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        self.lists = 0

    def page(self, prefix: str, after: str | None, max_keys: int) -> tuple[list[str], str | None]:
        """Up to ``max_keys`` keys under ``prefix`` sorting after ``after`` (a continuation
        token or StartAfter: both are the last key already seen here), and the next token."""
        from bisect import bisect_left, bisect_right

        start = bisect_right(self.keys, after) if after else 0
        start = max(start, bisect_left(self.keys, prefix))
        page = []
        for key in self.keys[start : start + max_keys]:
            if not key.startswith(prefix):
                break
            page.append(key)
        more = len(page) == max_keys and start + max_keys < len(self.keys)
        return page, page[-1] if more else None


def serve(listing: Listing) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            return

        def _send(self, status: int, body: bytes = b"", kind: str = "application/xml") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._send(404)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if "/" in parts.path.strip("/"):  # an object: only the probe asks, and gets 404
                body = b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
                self._send(404, body)
                return
            listing.lists += 1
            keys, next_token = listing.page(
                query.get("prefix", ""),
                query.get("continuation-token") or query.get("start-after"),
                int(query.get("max-keys", 1000)),
            )
            items = "".join(
                f"<Contents><Key>{escape(k)}</Key><LastModified>{MODIFIED}</LastModified>"
                "<Size>1000</Size><ETag>&quot;x&quot;</ETag>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
                for k in keys
            )
            token = (
                f"<NextContinuationToken>{escape(next_token)}</NextContinuationToken>"
                if next_token
                else ""
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
                f"<Name>{BUCKET}</Name><KeyCount>{len(keys)}</KeyCount>"
                f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>{token}{items}"
                "</ListBucketResult>"
            ).encode()
            self._send(200, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def build_project(root: Path, oids: list[str]) -> None:
    """A DVC project whose one output is a directory of ``len(oids)`` files (manifest only)."""
    root.mkdir(parents=True)
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    manifest = json.dumps(
        [{"md5": oid, "relpath": f"f{i:07d}.bin"} for i, oid in enumerate(oids)], sort_keys=True
    ).encode()
    digest = hashlib.md5(manifest).hexdigest()
    cache = root / ".dvc" / "cache" / "files" / "md5" / digest[:2]
    cache.mkdir(parents=True)
    (cache / (digest[2:] + ".dir")).write_bytes(manifest)
    (root / "images.dvc").write_text(
        f"outs:\n- md5: {digest}.dir\n  size: {1000 * len(oids)}\n  nfiles: {len(oids)}\n"
        "  hash: md5\n  path: images\n"
    )


def run(size: int, work: Path) -> dict[str, object]:
    oids = md5s(size)
    absent = set(oids[::100])  # 1% of the files are not on the remote
    keys = [f"{PREFIX}/files/md5/{o[:2]}/{o[2:]}" for o in oids if o not in absent]
    listing = Listing(keys)
    del keys
    server = serve(listing)
    project = work / f"n{size}"
    build_project(project, oids)
    del oids
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    (project / ".dvc" / "config").write_text(
        f"[core]\n    remote = s3\n['remote \"s3\"']\n    url = s3://{BUCKET}/{PREFIX}\n"
        f"    endpointurl = {endpoint}\n"
    )
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DVC_NO_ANALYTICS": "1",
        "NO_PROXY": "127.0.0.1",
    }
    report = work / f"n{size}.json"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc_multiremote", "verify", "-q", "--json", str(report)],
        cwd=project,
        env=env,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    server.shutdown()
    data = json.loads(report.read_text())
    remote = data["remotes"][0]
    # The manifest itself was never pushed: it counts as missing too.
    ok = remote["objects_missing"] == len(absent) + 1 and data["totals"]["objects"] == size + 1
    return {
        "objects": size,
        "seconds": round(seconds, 2),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "list_calls": listing.lists,
        "exit_code": os.waitstatus_to_exitcode(status),
        "missing_found": remote["objects_missing"],
        "correct": ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--quick", action="store_true", help="100,000 objects only")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json", help="JSON results")
    args = parser.parse_args(argv)
    sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for size in sizes:
            row = run(size, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    base = rows[0]
    lines = [
        "| objects | time | µs/object | peak RSS | LIST calls | correct |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        per = 1e6 * float(row["seconds"]) / int(row["objects"])  # type: ignore[arg-type]
        lines.append(
            f"| {row['objects']:,} | {row['seconds']} s | {per:.0f} | "
            f"{int(row['peak_rss_bytes']) / 2**20:.0f} MiB | {row['list_calls']} | {row['correct']} |"  # type: ignore[call-overload]
        )
    print("\n".join(lines))
    largest = rows[-1]
    verdict = "PASS" if int(largest["peak_rss_bytes"]) < TARGET_RSS else "MISS"  # type: ignore[call-overload]
    print(f"{verdict}: peak RSS at {largest['objects']:,} objects < 1 GiB")
    scale = (float(largest["seconds"]) / float(base["seconds"])) / (
        int(largest["objects"]) / int(base["objects"])
    )  # type: ignore[arg-type]
    print(f"time grows {scale:.2f}x as fast as the object count (1.00 = linear)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": rows, "target_rss_bytes": TARGET_RSS}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
