"""Render a Report for people: Markdown (PR comments, step summaries) and plain console text."""

from __future__ import annotations

from dvc_multiremote.report import Report

MAX_ROWS = 50
_STATE_LABEL = {
    "ok": "✅ complete",
    "missing": "❌ missing data",
    "auth": "🔒 credentials refused",
    "cap-exceeded": "⛔ download cap exceeded",
    "unreachable": "🔌 unreachable",
    "error": "⚠️ error",
}


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def headline(report: Report) -> str:
    """One sentence that says how things stand."""
    total = report.totals.get("objects", 0)
    broken = [r.name for r in report.remotes if r.state not in ("ok", "missing")]
    gaps = {r.name: r.objects_missing for r in report.remotes if r.objects_missing}
    parts = []
    if not broken and not gaps and not report.missing and not any(o.reason for o in report.outputs):
        return f"All {total:,} objects are on every remote ({', '.join(r.name for r in report.remotes)})."
    if gaps:
        parts.append(
            "; ".join(
                f"{name} lacks {count:,} of {total:,} objects" for name, count in gaps.items()
            )
        )
    unknown = [o.path for o in report.outputs if o.reason]
    if unknown:
        parts.append(f"{len(unknown)} output(s) have no manifest anywhere")
    if broken:
        parts.append("could not check " + ", ".join(broken))
    return ". ".join(parts) + "."


def to_markdown(report: Report, *, title: str | None = None) -> str:
    """The human report: a table per remote, the outputs with gaps, and the fixes."""
    lines = [f"### {title or 'dvc-multiremote ' + report.command}", "", headline(report), ""]
    lines += ["| Remote | State | Present | Missing | Missing bytes |", "|---|---|---:|---:|---:|"]
    for r in report.remotes:
        state = _STATE_LABEL.get(r.state, r.state)
        lines.append(
            f"| `{r.name}` | {state} | {_count(r.objects_present)} | {_count(r.objects_missing)} "
            f"| {human_size(r.bytes_missing) if r.bytes_missing is not None else '—'} |"
        )
    notes = [
        f"- `{r.name}`: {r.message}" for r in report.remotes if r.message and r.state != "missing"
    ]
    if notes:
        lines += ["", *notes]
    gaps = report.outputs_with_gaps
    if gaps:
        lines += [
            "",
            "#### Outputs with missing data",
            "",
            "| Output | File | Missing |",
            "|---|---|---|",
        ]
        for out in gaps[:MAX_ROWS]:
            what = (
                "; ".join(f"{name}: {out.describe_gap(name)}" for name in out.missing)
                or "everywhere"
            )
            if out.reason:
                what = f"{what} ({out.reason})"
            lines.append(f"| `{out.path}` | `{out.dvc_file}` | {what} |")
        if len(gaps) > MAX_ROWS:
            lines.append(f"| … and {len(gaps) - MAX_ROWS:,} more | | |")
        fixes = [fix for out in gaps for fix in out.fixes]
        if fixes:
            lines += ["", "#### How to fix", "", "```sh", *fixes[:MAX_ROWS], "```"]
            if len(fixes) > MAX_ROWS:
                lines.append(f"… and {len(fixes) - MAX_ROWS:,} more commands in the JSON report.")
    if report.missing:
        shown = report.missing[:MAX_ROWS]
        lines += ["", f"<details><summary>{len(report.missing):,} missing objects</summary>", ""]
        lines += ["| Path | md5 | Size | Missing on |", "|---|---|---:|---|"]
        lines += [
            f"| `{m.path}` | `{m.md5}` | {human_size(m.size)} | {', '.join(m.missing_on)} |"
            for m in shown
        ]
        if len(report.missing) > len(shown):
            lines.append(f"| … and {len(report.missing) - len(shown):,} more | | | |")
        lines += ["", "</details>"]
    if report.warnings:
        lines += ["", *[f"> ⚠️ {w}" for w in report.warnings]]
    return "\n".join(lines) + "\n"


def to_text(report: Report, *, verbose: bool = False) -> str:
    """What a person sees in a terminal: a headline, one line per remote, the gaps and fixes."""
    lines = [headline(report), ""]
    width = max((len(r.name) for r in report.remotes), default=6)
    for r in report.remotes:
        counts = ""
        if r.objects_present is not None:
            counts = f"{r.objects_present:,} present, {r.objects_missing:,} missing"
            if r.bytes_missing:
                counts += f" ({human_size(r.bytes_missing)})"
        detail = r.message if r.state not in ("ok", "missing") else ""
        lines.append(
            f"  {r.name:<{width}}  {r.state:<12} {counts}{'  ' + detail if detail else ''}"
        )
    gaps = report.outputs_with_gaps
    if gaps:
        lines += ["", "Outputs with missing data:"]
        for out in gaps[:MAX_ROWS]:
            where = "; ".join(f"{name} lacks {out.describe_gap(name)}" for name in out.missing)
            lines.append(f"  {out.path} ({out.dvc_file}): {where or 'unknown'}")
            if out.reason:
                lines.append(f"    {out.reason}")
        if len(gaps) > MAX_ROWS:
            lines.append(f"  … and {len(gaps) - MAX_ROWS:,} more")
        fixes = [fix for out in gaps for fix in out.fixes]
        if fixes:
            lines += ["", "To fix:"] + [f"  {fix}" for fix in fixes[:MAX_ROWS]]
    if verbose and report.missing:
        lines += ["", "Missing objects:"]
        lines += [
            f"  {m.path}  {m.md5}  missing on {', '.join(m.missing_on)}" for m in report.missing
        ]
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"
