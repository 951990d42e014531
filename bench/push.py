"""Time `dvc-multiremote push` (both remotes at once) against `dvc push` to each in turn.

The project: ``data/images`` (N small files; ``--big`` adds 20 MB files in ``data/large``) with
its local cache populated, and two remotes, ``backblaze`` (S3) and ``dagshub`` (HTTP), both
emptied before every run. The servers (``--servers``, see ``common.py``): ``rclone serve s3``
and ``rclone serve webdav`` (uploads by PUT) behind counting TCP relays (the default when rclone
is installed), or the Python stand-ins (moto S3 behind a counting FaultProxy, a DagsHub-like
server, uploads by POST). Compared, from the same
project and cache: ours, ``dvc-multiremote push -r backblaze,dagshub``; DVC's,
``dvc push -r backblaze && dvc push -r dagshub``. After each run both remotes must hold every
object. Each size runs at each ``--latencies`` value on the same servers: 0 ms is loopback as is
(no target: the ratio is reported for information); 20 ms delays every request on both remotes,
as a network would (target: ours <= 0.25x). Usage:
``python bench/push.py [--sizes 1000,10000] [--big 0] [--latencies 0,20] [--repeat 3] [--quick]
[--servers rclone|python] [--out PATH]``
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    RESULTS,
    Sample,
    World,
    add_latencies_option,
    add_servers_option,
    at_latency,
    build_world,
    dvc_cli,
    failure,
    finish,
    loopback_env,
    our_cli,
    progress,
    remote_of,
    report_of,
    run_steps,
    servers_of,
    summarise,
    target,
    work_folder,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

NAMES = ("backblaze", "dagshub")
B2, DAGSHUB = NAMES
DVC_PAIR = f"dvc push -r {B2} && dvc push -r {DAGSHUB}"
RATIO_TARGETS = {20: 0.25}  # latency (ms) -> most ours / DVC_PAIR may take; none: INFO


def run_ours(world: World, work: Path, sizes: dict[str, int]) -> tuple[Sample, list[str]]:
    world.empty_remotes()
    world.dvc_credentials(present=False)
    report_path = work / "ours.json"
    command = [*our_cli(), "push", "-r", ",".join(NAMES), "--json", str(report_path)]
    sample, runs = run_steps(world, [command], world.root, world.our_env())
    report = report_of(report_path)
    problems = [] if runs[0].code == 0 else [failure("ours", runs[0])]
    sample.extra = {
        name: {
            key: remote_of(report, name).get(key)
            for key in ("objects_pushed", "bytes_pushed", "requests")
        }
        for name in NAMES
    }
    if world.config_local.exists():
        problems.append("ours left .dvc/config.local behind")
    return sample, problems + _remote_problems(world, sizes)


def run_dvc(world: World, sizes: dict[str, int]) -> tuple[Sample, list[str]]:
    world.empty_remotes()
    world.dvc_credentials(present=True)
    steps = [[*dvc_cli(), "push", "-r", name] for name in NAMES]
    sample, runs = run_steps(world, steps, world.root)
    world.dvc_credentials(present=False)
    problems = [] if sample.code == 0 else [failure(DVC_PAIR, runs[-1])]
    return sample, problems + _remote_problems(world, sizes)


def _remote_problems(world: World, sizes: dict[str, int]) -> list[str]:
    problems = []
    for name, held in ((B2, world.s3_objects()), (DAGSHUB, world.http_objects())):
        if lacking := set(sizes) - held:
            problems.append(f"{name} lacks {len(lacking)} objects after the run")
    return problems


def bench(
    work: Path, files: int, big: int, repeat: int, latencies: Sequence[int], servers: str
) -> list[dict[str, Any]]:
    """One result per latency, all on the same project and servers."""
    progress(f"push N={files:,} + {big} x 20 MB on {servers} servers: building the project...")
    results = []
    with ExitStack() as stack:
        world = build_world(work, files, stack, big=big, names=NAMES, servers=servers)
        for latency in latencies:
            world.set_latency(latency / 1000)
            results.append(_bench_at(world, work, files, big, repeat, latency))
        world.set_latency(0)
    return results


def _bench_at(
    world: World, work: Path, files: int, big: int, repeat: int, latency: int
) -> dict[str, Any]:
    sizes = world.sizes()
    ours: list[Sample] = []
    dvc: list[Sample] = []
    problems: list[str] = []
    for attempt in range(repeat):
        order = ["ours", "dvc"] if attempt % 2 == 0 else ["dvc", "ours"]
        for who in order:
            sample, wrong = run_ours(world, work, sizes) if who == "ours" else run_dvc(world, sizes)
            (ours if who == "ours" else dvc).append(sample)
            problems += [f"run {attempt + 1}: {p}" for p in wrong]
        progress(
            f"  {latency} ms, {attempt + 1}/{repeat}: ours {ours[-1].wall:.2f} s, "
            f"{DVC_PAIR} {dvc[-1].wall:.2f} s"
        )
    mine, theirs = summarise(ours), summarise(dvc)
    ratio = mine["wall"] / theirs["wall"]
    dataset = sum(sizes.values())
    uploaded = {name: mine["traffic"][name]["bytes_received"] / dataset for name in NAMES}
    most = RATIO_TARGETS.get(latency)
    return {
        "command": "push",
        "scenario": at_latency("both remotes empty", latency),
        "latency_ms": latency,
        "servers": world.servers_text,
        "files": files,
        "big": big,
        "objects": len(sizes),
        "dataset_bytes": dataset,
        "repeat": repeat,
        "ours": mine,
        "baselines": [{"name": DVC_PAIR, **theirs}],
        "ratio": ratio,
        "targets": [
            target(f"ours / {DVC_PAIR} (no target set)", f"{ratio:.2f}", None)
            if most is None
            else target(f"ours / {DVC_PAIR} <= {most}", f"{ratio:.2f}", ratio <= most),
            target(
                "our request body bytes per remote / dataset",
                ", ".join(f"{name} {x:.3f}x" for name, x in uploaded.items()),
                None,
            ),
        ],
        "problems": sorted(set(problems)),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated small-file counts")
    parser.add_argument("--big", type=int, default=0, help="20 MB files to add")
    add_latencies_option(parser)
    parser.add_argument("--repeat", type=int, help="runs per size (default 3; --quick: 1)")
    add_servers_option(parser)
    parser.add_argument("--quick", action="store_true", help="N=1,000 once")
    parser.add_argument("--out", type=Path, default=RESULTS / "push.json", help="JSON results")
    args = parser.parse_args(argv)
    args.sizes = [1000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",")]
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.servers = servers_of(args.servers)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    with work_folder("bench-push-") as tmp:
        loopback_env(Path(tmp) / "home")
        results = [
            result
            for files in args.sizes
            for result in bench(
                Path(tmp) / f"n{files}", files, args.big, args.repeat, args.latencies, args.servers
            )
        ]
    return finish("push", results, args.out, load_before)


if __name__ == "__main__":
    sys.exit(main())
