"""Time `dvc-multiremote pull` against `dvc pull`, each in a fresh clone (empty cache), on loopback.

The project: ``data/images`` (N small files) and ``data/large`` (a few 20 MB files), complete on
both remotes: ``backblaze`` (S3, the default remote) and ``dagshub`` (HTTP). The servers
(``--servers``, see ``common.py``): ``rclone serve s3`` and ``rclone serve webdav`` behind
counting TCP relays (the default when rclone is installed), or the Python stand-ins (moto S3
behind a counting FaultProxy, a DagsHub-like server). ``capped`` needs the FaultProxy's B2 cap:
it always runs on the Python stand-ins (its result says so). Every scenario runs at each
``--latencies`` value on the same servers: 0 ms is loopback as is; 20 ms delays every request on
both remotes, as a network would. Scenarios (targets at 0 ms; at 20 ms):

- ``dead-primary``: backblaze on a dead port. Ours (falls back to dagshub) against
  ``dvc pull -r dagshub`` run directly. Target: ours <= 1.2x; <= 0.4x.
- ``both-up``: ours against ``dvc pull -r backblaze``. Target: ours <= 1.0x; <= 0.35x.
- ``capped``: B2's download cap once it has served 10% of the dataset's bytes (B2 counts its cap
  in bytes; downloads already running when it trips finish, so the share lands a little above).
  Ours against the seed's way,
  ``dvc pull -r backblaze || dvc pull -r dagshub``. Target: the bytes both servers served (S3 GET
  2xx + DagsHub GET 200 bodies) = 1.00x the dataset: nothing downloaded twice (no time target).
  It needs two big files or more: a lone one holds some 95% of the bytes, so the cap trips only
  if a tool happens to fetch it before the small files.

Every run must leave a complete workspace (every file hashed). Usage:
``python bench/pull.py [--sizes 1000,10000] [--big 3] [--latencies 0,20] [--repeat 3] [--quick]
[--servers rclone|python] [--out PATH]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from common import (
    RESULTS,
    Fault,
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
    set_endpoint,
    summarise,
    target,
    work_folder,
)

from servers import dead_port_url

if TYPE_CHECKING:
    from collections.abc import Sequence

NAMES = ("backblaze", "dagshub")
B2, DAGSHUB = NAMES
CAP_SHARE = 0.10


@dataclass(frozen=True)
class Scenario:
    name: str
    baseline_name: str
    baseline: list[list[str]]
    stop_on: str  # "failure": a && b; "success": a || b
    ratio_targets: dict[int, float]  # latency (ms) -> most ours / baseline may take; none: INFO
    faults: bool = False  # plays a fault: the Python stand-ins only


SCENARIOS = [
    Scenario(
        "dead-primary",
        f"dvc pull -r {DAGSHUB}",
        [["pull", "-r", DAGSHUB]],
        "failure",
        {0: 1.2, 20: 0.4},
    ),
    Scenario("both-up", f"dvc pull -r {B2}", [["pull", "-r", B2]], "failure", {0: 1.0, 20: 0.35}),
    Scenario(
        "capped",
        f"dvc pull -r {B2} || dvc pull -r {DAGSHUB}",
        [["pull", "-r", B2], ["pull", "-r", DAGSHUB]],
        "success",
        {},
        faults=True,
    ),
]


@dataclass
class Setup:
    world: World
    work: Path
    sizes: dict[str, int]  # object path -> bytes, manifests included
    cap_bytes: int


def prepare(work: Path, files: int, big: int, stack: ExitStack, servers: str) -> Setup:
    world = build_world(work, files, stack, big=big, names=NAMES, servers=servers)
    sizes = world.sizes()
    world.seed(sorted(sizes), sorted(sizes))
    return Setup(world, work, sizes, max(1, round(CAP_SHARE * sum(sizes.values()))))


def run_ours(setup: Setup, scenario: Scenario) -> tuple[Sample, list[str]]:
    world = setup.world
    clone = world.clone(setup.work)
    env = world.our_env()
    if scenario.name == "dead-primary":
        dead = dead_port_url()
        set_endpoint(clone, B2, dead)
        env = world.our_env(b2_host=urlsplit(dead).netloc)
    report_path = setup.work / "ours.json"
    command = [*our_cli(), "pull", "-r", ",".join(NAMES), "--json", str(report_path)]
    sample, runs = run_steps(world, [command], clone, env)
    report = report_of(report_path)
    problems = [] if runs[0].code == 0 else [failure("ours", runs[0])]
    sample.extra = {
        name: {
            key: remote_of(report, name).get(key)
            for key in ("state", "objects_served", "bytes_served")
        }
        for name in NAMES
    }
    sample.extra["remotes_used"] = report.get("remotes_used") if report else None
    problems += _wrong_in_ours(setup, scenario, sample.extra) + world.workspace_problems(clone)
    said, served = sample.extra[B2]["bytes_served"], sample.traffic[B2]["bytes_served"]
    if said != served:
        problems.append(f"ours: report says {said} bytes from {B2}, its server served {served}")
    shutil.rmtree(clone)
    return sample, problems


def _wrong_in_ours(setup: Setup, scenario: Scenario, said: dict[str, Any]) -> list[str]:
    expected_state = {"dead-primary": "unreachable", "capped": "cap-exceeded"}.get(
        scenario.name, "ok"
    )
    problems = []
    if said[B2]["state"] != expected_state:
        problems.append(f"ours: {B2} state {said[B2]['state']}, expected {expected_state}")
    served = sum(said[name]["objects_served"] or 0 for name in NAMES)
    if served != len(setup.sizes):
        problems.append(f"ours: report says {served} objects served of {len(setup.sizes)}")
    if scenario.name == "capped" and (said[B2]["bytes_served"] or 0) < setup.cap_bytes:
        problems.append(
            f"ours: {said[B2]['bytes_served']} bytes from {B2}, capped after {setup.cap_bytes}"
        )
    return problems


def run_baseline(setup: Setup, scenario: Scenario) -> tuple[Sample, list[str]]:
    world = setup.world
    clone = world.clone(setup.work)
    world.dvc_credentials(present=True, root=clone)
    steps = [[*dvc_cli(), *step] for step in scenario.baseline]
    sample, runs = run_steps(world, steps, clone, stop_on=scenario.stop_on)
    problems = [] if sample.code == 0 else [failure(scenario.baseline_name, runs[-1])]
    problems += world.workspace_problems(clone)
    shutil.rmtree(clone)
    return sample, problems


def bench(
    work: Path, files: int, big: int, repeat: int, latencies: Sequence[int], servers: str
) -> list[dict[str, Any]]:
    """One result per scenario and latency; the scenarios that play faults on the Python
    stand-ins, the others on ``servers``, each kind of servers with its own copy of the project
    (the same files)."""
    results = []
    for kind in dict.fromkeys([servers, "python"]):
        scenarios = [
            s
            for s in SCENARIOS
            if (s.faults and kind == "python") or (not s.faults and kind == servers)
        ]
        if not scenarios:
            continue
        with ExitStack() as stack:
            progress(
                f"pull N={files:,} + {big} x 20 MB on {kind} servers: building the project, "
                "seeding both remotes..."
            )
            setup = prepare(work / kind, files, big, stack, kind)
            for scenario in scenarios:
                for latency in latencies:
                    setup.world.set_latency(latency / 1000)
                    ours, base, problems = _runs(setup, scenario, repeat, latency)
                    results.append(
                        result(setup, scenario, files, big, latency, ours, base, problems)
                    )
            setup.world.set_latency(0)
    results.sort(key=lambda r: [s.name for s in SCENARIOS].index(r["scenario_name"]))
    return results


def _runs(
    setup: Setup, scenario: Scenario, repeat: int, latency: int
) -> tuple[list[Sample], list[Sample], list[str]]:
    """``repeat`` runs of ours and of the baseline, alternating which goes first."""
    ours: list[Sample] = []
    base: list[Sample] = []
    problems: list[str] = []
    for attempt in range(repeat):
        # Alternate which tool goes first: the machine's load drifts.
        order = ("ours", "base") if attempt % 2 == 0 else ("base", "ours")
        for who in order:
            if scenario.name == "capped":
                setup.world.s3.set_fault(Fault("b2_cap", after_bytes=setup.cap_bytes))
            runner = run_ours if who == "ours" else run_baseline
            sample, wrong = runner(setup, scenario)
            setup.world.s3.set_fault(None)  # the latency stays
            (ours if who == "ours" else base).append(sample)
            problems += [f"run {attempt + 1}: {p}" for p in wrong]
        progress(
            f"  {scenario.name}, {latency} ms, {attempt + 1}/{repeat}: ours {ours[-1].wall:.2f} s, "
            f"{scenario.baseline_name} {base[-1].wall:.2f} s"
        )
    return ours, base, problems


def result(
    setup: Setup,
    scenario: Scenario,
    files: int,
    big: int,
    latency: int,
    ours: Sequence[Sample],
    base: Sequence[Sample],
    problems: list[str],
) -> dict[str, Any]:
    dataset = sum(setup.sizes.values())
    mine = summarise(ours)
    ratio = mine["wall"] / summarise(base)["wall"]
    served = [sum(s.traffic[name]["bytes_served"] for name in NAMES) / dataset for s in ours]
    found = {
        "command": "pull",
        "scenario": at_latency(scenario.name, latency),
        "scenario_name": scenario.name,
        "latency_ms": latency,
        "servers": setup.world.servers_text,
        "files": files,
        "big": big,
        "objects": len(setup.sizes),
        "dataset_bytes": dataset,
        "repeat": len(ours),
        "ours": mine,
        "baselines": [{"name": scenario.baseline_name, **summarise(base)}],
        "ratio": ratio,
        "bytes_served_over_dataset": served,
        "problems": sorted(set(problems)),
    }
    targets = []
    if (most := scenario.ratio_targets.get(latency)) is not None:
        targets.append(
            target(f"ours / {scenario.baseline_name} <= {most}", f"{ratio:.2f}", ratio <= most)
        )
    else:
        targets.append(target(f"ours / {scenario.baseline_name}", f"{ratio:.2f}", None))
    if scenario.name == "capped":
        share = [s.traffic[B2]["bytes_served"] / dataset for s in ours]
        found["cap_bytes"] = setup.cap_bytes
        found["b2_byte_share"] = share
        worst = max(served, key=lambda x: abs(x - 1))
        targets += [
            target(
                "bytes served by both servers = 1.00x the dataset",
                f"{worst:.4f}x",
                all(abs(x - 1) < 0.005 for x in served),
            ),
            target(
                f"share of bytes from {B2} (capped after {CAP_SHARE:.0%} of the bytes)",
                " / ".join(f"{x:.1%}" for x in share),
                None,
            ),
        ]
    found["targets"] = targets
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated small-file counts")
    parser.add_argument("--big", type=int, help="20 MB files (default 3; --quick: 2)")
    add_latencies_option(parser)
    parser.add_argument("--repeat", type=int, help="runs per scenario (default 3; --quick: 1)")
    add_servers_option(parser)
    parser.add_argument("--quick", action="store_true", help="N=1,000, two 20 MB files, once")
    parser.add_argument("--out", type=Path, default=RESULTS / "pull.json", help="JSON results")
    args = parser.parse_args(argv)
    args.sizes = [1000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",")]
    args.big = args.big if args.big is not None else (2 if args.quick else 3)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.servers = servers_of(args.servers)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results: list[dict[str, Any]] = []
    with work_folder("bench-pull-") as tmp:
        loopback_env(Path(tmp) / "home")
        for files in args.sizes:
            results += bench(
                Path(tmp) / f"n{files}", files, args.big, args.repeat, args.latencies, args.servers
            )
    return finish("pull", results, args.out, load_before)


if __name__ == "__main__":
    sys.exit(main())
