"""Time `dvc-multiremote verify` against the `dvc status -c` pair it replaces, on loopback.

For each N: a directory output of N small files; remote ``s3`` lacks one 10% of the files,
remote ``http`` another 10%, and neither has the ``.dir`` manifest (the local cache keeps it), so
both tools must look at every file. The dropped objects are simply never uploaded. The servers
(``--servers``, see ``common.py``): ``rclone serve s3`` and ``rclone serve webdav`` behind
counting TCP relays (the default when rclone is installed), or the Python stand-ins (moto
behind a counting proxy, a DagsHub-like server), each in a process of its own.

Each size runs at each ``--latencies`` value: 0 ms is loopback as is (on the Python stand-ins
both tools are bound by the CPU those servers burn on the same cores); 20 ms delays every
request on both remotes as a real network would (B2 and DagsHub are tens of milliseconds away
from a GitHub runner), which is where the round trips a tool waits for, and how many it
overlaps, show.

Usage: ``python bench/verify.py [--sizes 1000,10000] [--latencies 0,20] [--repeat K] [--quick]
[--servers rclone|python]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    DATA,
    RESULTS,
    SERVERS_TEXT,
    Timed,
    World,
    add_servers_option,
    build_world,
    loopback_env,
    markdown_table,
    median,
    our_cli,
    servers_of,
    target,
    timed,
    work_folder,
    write_document,
)

if TYPE_CHECKING:
    from collections.abc import Callable

REMOTES = ("s3", "http")
RATIO_TARGET = 0.15
RATIO_AT = 10_000
RATIO_LATENCY_MS = 20  # the target is judged with round trips, as over a network
FLOOR_TARGET = 1.5  # ours within this many times the round-trip floor (see ``floor``)
MANIFEST_GETS = 1  # ours may read each .dir manifest from a remote; there is one directory


@dataclass
class Scenario:
    files: int
    world: World
    dir_md5: str
    gone: dict[str, set[str]]  # remote -> md5 of the files it lacks
    paths: dict[str, str]  # md5 -> workspace path


@dataclass
class Measured:
    """One timed run of a tool (for DVC: the pair of commands)."""

    wall: float
    cpu: float  # the tool's own user + system time
    server_cpu: float  # what the test servers burnt meanwhile
    peak_rss: int  # bytes, the largest of the tool's processes
    requests: dict[str, dict[str, int]]  # remote -> kind -> count
    server_cpu_parts: dict[str, float]  # the servers' CPU per process (rclone: and relay)


def prepare(work: Path, files: int, stack: ExitStack, servers: str) -> Scenario:
    world = build_world(work, files, stack, servers=servers)
    objects = world.objects()
    md5 = {rel: rel.split("/", 2)[2].replace("/", "") for rel in objects}
    manifest = next(rel for rel in objects if rel.endswith(".dir"))
    shuffled = sorted(rel for rel in objects if rel != manifest)
    random.Random(files).shuffle(shuffled)
    tenth = files // 10
    dropped = {"s3": set(shuffled[:tenth]), "http": set(shuffled[tenth : 2 * tenth])}
    world.seed(
        s3_objects=[rel for rel in shuffled if rel not in dropped["s3"]],
        http_objects=[rel for rel in shuffled if rel not in dropped["http"]],
    )
    gone = {name: {md5[rel] for rel in rels} for name, rels in dropped.items()}
    paths = {md5[rel]: path for rel, path in objects.items()}
    return Scenario(files, world, md5[manifest], gone, paths)


def measure(world: World, runs: list[Timed], before: dict[str, float]) -> Measured:
    after = world.server_cpu_parts()  # before reading the logs: that costs the servers CPU too
    parts = {name: round(after[name] - before[name], 3) for name in after}
    return Measured(
        wall=sum(run.seconds for run in runs),
        cpu=sum(run.cpu for run in runs),
        server_cpu=sum(parts.values()),
        peak_rss=max(run.peak_rss for run in runs),
        requests=world.requests(),
        server_cpu_parts=parts,
    )


def run_ours(sc: Scenario, report_path: Path) -> tuple[Measured, list[str]]:
    """One timed run of our CLI, and anything wrong in what it said."""
    world = sc.world
    world.dvc_credentials(present=False)
    world.clear_logs()
    cpu = world.server_cpu_parts()
    command = [*our_cli(), "verify", "-r", ",".join(REMOTES), "--json", str(report_path)]
    run = timed(command, world.root, world.our_env())
    measured = measure(world, [run], cpu)
    problems = [] if run.code == 1 else [f"ours exited {run.code}: {run.stderr.strip()[-500:]}"]
    if report_path.exists():
        problems += _wrong_in_ours(sc, json.loads(report_path.read_text()))
    else:
        problems.append("ours wrote no JSON report")
    if world.config_local.exists():
        problems.append("ours left .dvc/config.local behind")
    return measured, problems


def _wrong_in_ours(sc: Scenario, report: dict[str, Any]) -> list[str]:
    problems = []
    for name in REMOTES:
        said = {item["md5"] for item in report["missing"] if name in item["missing_on"]}
        expected = sc.gone[name] | {sc.dir_md5}
        if said != expected:
            extra = sorted(sc.paths.get(m, m) for m in said - expected)[:5]
            lost = sorted(sc.paths.get(m, m) for m in expected - said)[:5]
            problems.append(
                f"ours on {name}: {len(said)} missing, expected {len(expected)}; "
                f"wrongly missing {extra}, not reported {lost}"
            )
    return problems


def run_dvc(sc: Scenario) -> tuple[Measured, dict[str, float], list[str]]:
    """`dvc status -c -r s3` then `-r http`: the pair, each one's wall time, anything wrong."""
    world = sc.world
    world.dvc_credentials(present=True)
    world.clear_logs()
    cpu = world.server_cpu_parts()
    runs: dict[str, Timed] = {}
    problems = []
    for name in REMOTES:
        command = [sys.executable, "-m", "dvc", "status", "-c", "-r", name, "--json"]
        runs[name] = run = timed(command, world.root)
        if run.code != 0:
            problems.append(f"dvc status -r {name} exited {run.code}: {run.stderr[-500:]}")
            continue
        said = {path for path, state in json.loads(run.stdout or "{}").items() if state == "new"}
        expected = {sc.paths[md5] for md5 in sc.gone[name]} | {DATA}
        if said != expected:
            problems.append(f"dvc status -r {name}: {len(said)} new, expected {len(expected)}")
    measured = measure(world, list(runs.values()), cpu)
    world.dvc_credentials(present=False)
    return measured, {name: run.seconds for name, run in runs.items()}, problems


def bench(
    work: Path, files: int, repeat: int, latencies: list[float], servers: str
) -> list[dict[str, Any]]:
    """One result per latency, all on the same project and servers."""
    results = []
    with ExitStack() as stack:
        print(
            f"N={files:,}: building the project and seeding the remotes ({servers})...",
            file=sys.stderr,
        )
        sc = prepare(work / f"n{files}", files, stack, servers)
        for latency in latencies:
            sc.world.set_latency(latency)
            results.append(_bench_at(work, sc, repeat, latency))
        sc.world.set_latency(0)
    return results


def _bench_at(work: Path, sc: Scenario, repeat: int, latency: float) -> dict[str, Any]:
    ours: list[Measured] = []
    dvc: list[Measured] = []
    dvc_each: dict[str, list[float]] = {name: [] for name in REMOTES}
    problems: list[str] = []
    files = sc.files
    for attempt in range(1, repeat + 1):
        mine, wrong = run_ours(sc, work / f"n{files}" / "ours.json")
        pair, each, dvc_wrong = run_dvc(sc)
        ours.append(mine)
        dvc.append(pair)
        for name, seconds in each.items():
            dvc_each[name].append(seconds)
        problems += wrong + dvc_wrong
        print(
            f"  {latency * 1000:g} ms, run {attempt}/{repeat}: ours {mine.wall:.2f} s, dvc "
            + " + ".join(f"{seconds:.2f} s" for seconds in each.values()),
            file=sys.stderr,
        )
    result: dict[str, Any] = {
        "files": files,
        "latency_ms": round(latency * 1000),
        "servers": sc.world.servers_text,
        "repeat": repeat,
        "ours": summary(ours),
        "dvc": {**summary(dvc), **{f"wall_{n}": median(t) for n, t in dvc_each.items()}},
        "ratio": median([m.wall for m in ours]) / median([m.wall for m in dvc]),
        "problems": sorted(set(problems)),
    }
    result["targets"] = targets(result)
    return result


def summary(runs: list[Measured]) -> dict[str, Any]:
    """Medians of the runs, every run, and the request counts of the last one."""
    return {
        "wall": median([m.wall for m in runs]),
        "cpu": median([m.cpu for m in runs]),
        "server_cpu": median([m.server_cpu for m in runs]),
        "server_cpu_parts": {
            name: median([m.server_cpu_parts[name] for m in runs])
            for name in runs[0].server_cpu_parts
        },
        "peak_rss": max(m.peak_rss for m in runs),
        "requests": runs[-1].requests,
        "runs": [asdict(m) for m in runs],
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """PASS/MISS per performance target (missing one is reported, not an error), INFO for a
    figure without one."""
    files, requests = result["files"], result["ours"]["requests"]
    lists, gets, ratio = requests["s3"]["LIST"], requests["http"]["GET"], result["ratio"]
    found = [
        (f"our S3 LIST calls <= {files / 1000 + 3:g}", lists, lists <= files / 1000 + 3),
        (f"our HTTP GETs <= {MANIFEST_GETS} (.dir manifests only)", gets, gets <= MANIFEST_GETS),
    ]
    if files >= RATIO_AT:
        latency = result.get("latency_ms", 0)
        if latency == RATIO_LATENCY_MS:
            name = f"ours/DVC <= {RATIO_TARGET} ({latency} ms per request)"
            found.insert(0, (name, f"{ratio:.3f}", ratio <= RATIO_TARGET))
            least = floor(result)
            wall = result["ours"]["wall"]
            name = f"ours <= {FLOOR_TARGET}x the round-trip floor ({least:.2f} s)"
            found.insert(1, (name, f"{wall / least:.2f}x", wall <= FLOOR_TARGET * least))
        else:
            # On bare loopback both tools mostly wait for the two Python test servers, which
            # burn more CPU than either client on the same cores.
            found.insert(0, (f"ours/DVC at {latency} ms (no target)", f"{ratio:.3f}", None))
    return [target(name, value, ok) for name, value, ok in found]


def floor(result: dict[str, Any]) -> float:
    """The least time our checks can take at the run's delay: the HTTP remote's HEADs,
    ``CHECK_JOBS`` at a time, and the S3 listing's pages, ``LIST_RANGES`` at a time, one
    round trip each (the two remotes are checked at once)."""
    from dvc_multiremote.remotes.s3 import S3Remote
    from dvc_multiremote.settings import CHECK_JOBS

    delay = result.get("latency_ms", 0) / 1000
    requests = result["ours"]["requests"]
    heads = requests["http"]["HEAD"]
    lists = requests["s3"]["LIST"]
    return max(math.ceil(heads / CHECK_JOBS), math.ceil(lists / S3Remote.LIST_RANGES)) * delay


def _counts(requests: dict[str, dict[str, int]]) -> str:
    s3, http = requests["s3"], requests["http"]
    return f"{s3['LIST']}/{s3['HEAD']}/{s3['GET']} · {http['HEAD']}/{http['GET']}"


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("N", lambda r: f"{r['files']:,}"),
    ("latency (ms)", lambda r: r.get("latency_ms", 0)),
    ("servers", lambda r: r.get("servers", "—")),
    ("runs", lambda r: r["repeat"]),
    ("ours (s)", lambda r: f"{r['ours']['wall']:.2f}"),
    ("dvc -r s3 (s)", lambda r: f"{r['dvc']['wall_s3']:.2f}"),
    ("dvc -r http (s)", lambda r: f"{r['dvc']['wall_http']:.2f}"),
    ("dvc pair (s)", lambda r: f"{r['dvc']['wall']:.2f}"),
    ("ours/DVC", lambda r: f"{r['ratio']:.3f}"),
    ("CPU ours / DVC (s)", lambda r: f"{r['ours']['cpu']:.1f} / {r['dvc']['cpu']:.1f}"),
    (
        "server CPU ours / DVC (s)",
        lambda r: f"{r['ours']['server_cpu']:.1f} / {r['dvc']['server_cpu']:.1f}",
    ),
    ("ours S3 LIST/HEAD/GET · HTTP HEAD/GET", lambda r: _counts(r["ours"]["requests"])),
    ("DVC S3 LIST/HEAD/GET · HTTP HEAD/GET", lambda r: _counts(r["dvc"]["requests"])),
]


def render(results: list[dict[str, Any]]) -> str:
    """The Markdown table, then PASS/MISS per target and any errors."""
    rows = [[cell(r) for _, cell in COLUMNS] for r in results]
    lines = [markdown_table([name for name, _ in COLUMNS], rows), ""]
    for r in results:
        n = f"N={r['files']:,}, {r.get('latency_ms', 0)} ms"
        lines += [f"- {n}: {t['status']} {t['target']} (got {t['value']})" for t in r["targets"]]
        lines += [f"- {n}: ERROR {problem}" for problem in r["problems"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated file counts")
    parser.add_argument("--repeat", type=int, help="runs per size (default: 3 up to 1,000, else 1)")
    parser.add_argument(
        "--latencies",
        default="0,20",
        help="comma-separated per-request delays in ms (0: loopback as is; 20: a nearby region)",
    )
    add_servers_option(parser)
    parser.add_argument("--quick", action="store_true", help="N=200 once: a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS / "verify.json", help="JSON results")
    args = parser.parse_args(argv)
    args.sizes = [200] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",")]
    args.latencies = [float(ms) / 1000 for ms in args.latencies.split(",")]
    if args.quick and args.repeat is None:
        args.repeat = 1
    args.servers = servers_of(args.servers)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    with work_folder("bench-verify-") as tmp:
        loopback_env(Path(tmp) / "home")
        results = [
            result
            for files in args.sizes
            for result in bench(
                Path(tmp),
                files,
                args.repeat or (3 if files <= 1000 else 1),
                args.latencies,
                args.servers,
            )
        ]
    write_document("verify", results, args.out, load_before[0], servers=SERVERS_TEXT[args.servers])
    print(render(results))
    print(f"\nWrote {args.out}")
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
