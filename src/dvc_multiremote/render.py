"""Render a Report for people: Markdown (PR comments, step summaries) and plain console text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvc_multiremote.report import (
    MissingObject,
    PullReport,
    PushReport,
    RemoteReport,
    Report,
    SyncReport,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from dvc_multiremote.verdict import Verdict

MAX_ROWS = 50
_STATE_LABEL = {
    "ok": "✅ ok",
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
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _not_checked(verdict: Verdict, verb: str = "check") -> str:
    """``could not check dagshub: credentials refused`` for every remote that could not be used."""
    return f"could not {verb} " + "; ".join(f"{u.remote}: {u.why}" for u in verdict.unusable)


def _unknown(report: Report) -> str:
    return f"{len(report.unknown_outputs)} output(s) have files that are unknown (no readable manifest)"


# --- one sentence per command -------------------------------------------------------------
def _pinned(report: Report) -> bool:
    return bool(report.totals.get("pinned")) or any(out.pinned_to for out in report.outputs)


def _aside(report: Report) -> str:
    """`` 2 output(s) set aside (...).`` when some were left alone on purpose, else ""."""
    if not report.set_aside:
        return ""
    kinds = sorted({a.why.split(":")[0] for a in report.set_aside})
    return f" {len(report.set_aside)} output(s) set aside ({', '.join(kinds)}): see below."


def _verify_headline(report: Report, verdict: Verdict) -> str:
    total = report.totals.get("objects", 0)
    gaps = {r.name: r for r in report.remotes if r.objects_missing}
    unknown = report.unknown_outputs
    if verdict.everything_checked and not gaps and not report.missing and not unknown:
        names = ", ".join(r.name for r in report.remotes)
        where = "every remote that owes them" if _pinned(report) else "every remote"
        return f"All {total:,} objects are on {where} ({names})." + _aside(report)
    parts = [
        f"{name} lacks {r.objects_missing:,} of {(r.objects_present or 0) + (r.objects_missing or 0):,} objects"
        for name, r in gaps.items()
    ]
    if unknown:
        parts.append(f"{len(unknown)} output(s) have no manifest anywhere")
    if not verdict.everything_checked:
        parts.append(_not_checked(verdict))
    if not parts or (not gaps and not unknown):
        parts.insert(0, f"The remotes that were checked hold all {total:,} objects")
    return "; ".join(parts) + "." + _aside(report)


def _pull_headline(report: Report, verdict: Verdict) -> str:
    served = [(r.name, r.objects_served or 0, r.bytes_served or 0) for r in report.remotes]
    got = sum(n for _, n, _ in served)
    size = sum(b for _, _, b in served)
    total = report.totals.get("objects", 0)
    if not got and not report.missing and not report.unknown_outputs:
        return f"Everything was already in the cache ({total:,} objects); workspace checked out."
    sources = ", ".join(f"{name} ({n:,})" for name, n, _ in served if n)
    text = f"Pulled {got:,} objects ({human_size(size)})" + (f" from {sources}" if sources else "")
    if report.missing:
        text += f"; {len(report.missing):,} could not be had from any remote"
    if report.unknown_outputs:
        text += "; " + _unknown(report)
    if (report.missing or report.unknown_outputs) and not verdict.everything_checked:
        text += "; " + _not_checked(verdict, "use")
    return text + "."


def _push_headline(report: Report, verdict: Verdict) -> str:
    pushed = [(r.name, r.objects_pushed or 0) for r in report.remotes]
    parts = [f"{name} +{n:,}" for name, n in pushed if n]
    text = "Pushed " + (", ".join(parts) if parts else "nothing new")
    if not verdict.everything_checked:
        text += "; " + _not_checked(verdict, "use")
    if isinstance(report, PushReport) and report.not_in_cache:
        text += f"; {len(report.not_in_cache):,} object(s) are not in the local cache"
    if report.missing:
        text += f"; {len(report.missing):,} object(s) failed"
    return text + "."


def _sync_headline(report: Report, verdict: Verdict) -> str:
    if not isinstance(report, SyncReport):
        return _verify_headline(report, verdict)
    pairs = report.pairs
    verb = "Would copy" if report.dry_run else "Copied"
    total = report.totals.get("objects", 0)
    nothing_left = not (
        pairs
        or report.missing
        or report.skipped_budget
        or report.unavailable
        or report.unknown_outputs
    )
    if nothing_left and verdict.everything_checked:
        owes = "what it owes of the" if _pinned(report) else "all"
        return f"Nothing to copy: every remote holds {owes} {total:,} objects in scope." + _aside(
            report
        )
    moved = sum(p.objects_copied for p in pairs)
    size = sum(p.bytes_copied for p in pairs)
    text = f"{verb} {moved:,} objects ({human_size(size)})"
    if pairs:
        text += ": " + ", ".join(
            f"{p.source} → {p.destination} {p.objects_copied:,}" for p in pairs
        )
    left = [
        (len(items), label)
        for items, label in (
            (report.skipped_budget, "left for lack of budget"),
            (report.unavailable, "on no remote"),
            (report.missing, "failed"),
            (report.corrupt, "corrupt copies refused"),
        )
        if items
    ]
    if left:
        text += "; " + ", ".join(f"{n:,} {label}" for n, label in left)
    if report.unknown_outputs:
        text += "; " + _unknown(report)
    if not verdict.everything_checked:
        text += "; " + _not_checked(verdict)
    return text + "."


_HEADLINES: dict[str, Callable[[Report, Verdict], str]] = {
    "sync": _sync_headline,
    "verify": _verify_headline,
    "demo": _verify_headline,
    "pull": _pull_headline,
    "push": _push_headline,
}


def headline(report: Report, verdict: Verdict) -> str:
    """One sentence that says how things stand; it names every remote that could not be
    checked, and claims that all is well only when every remote was."""
    return _HEADLINES.get(report.command, _verify_headline)(report, verdict)


# --- per-remote figures -------------------------------------------------------------------
def _columns(report: Report) -> list[tuple[str, Callable[[RemoteReport], str]]]:
    if isinstance(report, PullReport):
        return [
            ("Served", lambda r: _count(r.objects_served)),
            ("Bytes served", lambda r: human_size(r.bytes_served)),
        ]
    if isinstance(report, SyncReport):
        return [
            ("Lacked", lambda r: _count(r.objects_missing)),
            ("Downloaded from", lambda r: human_size(r.bytes_downloaded)),
        ]
    if isinstance(report, PushReport):
        return [
            ("Pushed", lambda r: _count(r.objects_pushed)),
            ("Bytes pushed", lambda r: human_size(r.bytes_pushed)),
            ("Failed", lambda r: _count(r.objects_failed)),
        ]
    return [
        ("Present", lambda r: _count(r.objects_present)),
        ("Missing", lambda r: _count(r.objects_missing)),
        (
            "Missing bytes",
            lambda r: "—" if r.bytes_missing is None else human_size(r.bytes_missing),
        ),
    ]


def storage_lines(report: Report) -> list[str]:
    """``backblaze: 7.4 GB stored, 6.9 GB referenced`` for each remote whose listing said."""
    return [
        f"{r.name}: {human_size(r.bytes_stored)} stored, "
        f"{human_size(r.bytes_referenced or 0)} referenced"
        for r in report.remotes
        if r.bytes_stored is not None
    ]


def _missing_title(report: Report) -> str:
    if isinstance(report, SyncReport):
        return "copies that failed"
    if isinstance(report, PullReport):
        return "objects no remote could give"
    if isinstance(report, PushReport):
        return "objects that failed to upload"
    return "missing objects"


def _missing_rows(items: list[MissingObject]) -> list[str]:
    rows = [
        f"| `{m.path}` | `{m.md5}` | {human_size(m.size)} | {', '.join(m.missing_on)} |"
        for m in items[:MAX_ROWS]
    ]
    if len(items) > MAX_ROWS:
        rows.append(f"| … and {len(items) - MAX_ROWS:,} more | | | |")
    return rows


def _lists(report: Report) -> list[tuple[str, list[MissingObject]]]:
    """The object lists a report carries besides ``missing``, with their titles."""
    if isinstance(report, PushReport):
        return [("objects not in the local cache", report.not_in_cache)]
    if isinstance(report, SyncReport):
        return [
            ("objects left for lack of budget", report.skipped_budget),
            ("objects on no remote", report.unavailable),
            ("corrupt copies refused", report.corrupt),
        ]
    return []


def to_markdown(report: Report, verdict: Verdict, *, title: str | None = None) -> str:
    """The human report: a table per remote, the outputs with gaps, and the fixes."""
    columns = _columns(report)
    lines = [f"### {title or 'dvc-multiremote ' + report.command}", "", headline(report, verdict)]
    lines.append("")
    lines.append("| Remote | State | " + " | ".join(name for name, _ in columns) + " |")
    lines.append("|---|---|" + "---:|" * len(columns))
    for r in report.remotes:
        cells = " | ".join(cell(r) for _, cell in columns)
        lines.append(f"| `{r.name}` | {_STATE_LABEL.get(r.state, r.state)} | {cells} |")
    notes = [
        f"- `{r.name}`: {r.message}" for r in report.remotes if r.message and r.state != "missing"
    ]
    notes += [f"- {line}" for line in storage_lines(report)]
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
            what = "; ".join(f"{name}: {out.describe_gap(name)}" for name in out.missing) or "—"
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
    for title_text, items in [(_missing_title(report), report.missing), *_lists(report)]:
        if items:
            lines += ["", f"<details><summary>{len(items):,} {title_text}</summary>", ""]
            lines += ["| Path | md5 | Size | Where |", "|---|---|---:|---|", *_missing_rows(items)]
            lines += ["", "</details>"]
    if report.set_aside:
        lines += [
            "",
            f"<details><summary>{len(report.set_aside):,} outputs set aside</summary>",
            "",
        ]
        lines += [f"- `{a.path}` (`{a.dvc_file}`): {a.why}" for a in report.set_aside[:MAX_ROWS]]
        lines += ["", "</details>"]
    if report.warnings:
        lines += ["", *[f"> ⚠️ {w}" for w in report.warnings]]
    return "\n".join(lines) + "\n"


def _remote_line(report: Report, r: RemoteReport, width: int) -> str:
    if isinstance(report, PullReport):
        counts = f"{r.objects_served or 0:,} served ({human_size(r.bytes_served or 0)})"
    elif isinstance(report, SyncReport):
        counts = f"lacked {_count(r.objects_missing)}, {human_size(r.bytes_downloaded or 0)} downloaded from it"
    elif isinstance(report, PushReport):
        counts = f"{r.objects_pushed or 0:,} pushed ({human_size(r.bytes_pushed or 0)})"
        if r.objects_failed:
            counts += f", {r.objects_failed:,} failed"
    elif r.objects_present is not None:
        counts = f"{r.objects_present:,} present, {r.objects_missing:,} missing"
        if r.bytes_missing:
            counts += f" ({human_size(r.bytes_missing)})"
    else:
        counts = ""
    shown = r.state not in ("ok", "missing") or isinstance(report, PullReport) or r.objects_failed
    detail = r.message if shown else ""
    return f"  {r.name:<{width}}  {r.state:<12} {counts}{'  ' + detail if detail else ''}".rstrip()


def to_text(report: Report, verdict: Verdict, *, verbose: bool = False) -> str:
    """What a person sees in a terminal: a headline, one line per remote, the gaps and fixes."""
    lines = [headline(report, verdict), ""]
    width = max((len(r.name) for r in report.remotes), default=6)
    lines += [_remote_line(report, r, width) for r in report.remotes]
    gaps = report.unknown_outputs if isinstance(report, SyncReport) else []
    if report.command in ("verify", "demo"):
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
    for pair in report.pairs if isinstance(report, SyncReport) else []:
        lines.append(
            f"  {pair.source} → {pair.destination}: {pair.objects_copied:,} objects "
            f"({human_size(pair.bytes_copied)})"
        )
    sync_lists = (
        [
            (report.skipped_budget, "Left for lack of budget"),
            (report.unavailable, "On no remote that answered"),
            (report.corrupt, "Corrupt copies (refused; fix or delete them)"),
        ]
        if isinstance(report, SyncReport)
        else []
    )
    for items, label in sync_lists:
        if items:
            lines += ["", f"{label}:"]
            lines += [
                f"  {m.path}" + (f"  (on {', '.join(m.missing_on)})" if m.missing_on else "")
                for m in items[:MAX_ROWS]
            ]
    listed = report.missing if report.command in ("pull", "push", "sync") or verbose else []
    if listed:
        lines += ["", _missing_title(report).capitalize() + ":"]
        lines += [
            f"  {m.path}" + (f"  (not on {', '.join(m.missing_on)})" if m.missing_on else "")
            for m in listed[:MAX_ROWS]
        ]
        if len(listed) > MAX_ROWS:
            lines.append(f"  … and {len(listed) - MAX_ROWS:,} more (see --json)")
    if isinstance(report, PushReport) and report.not_in_cache:
        lines += ["", "Not in the local cache (push them from a machine that has them):"]
        lines += [f"  {m.path}" for m in report.not_in_cache[:MAX_ROWS]]
    storage = storage_lines(report)
    if storage:
        lines += ["", *storage]
    if report.set_aside:
        lines += ["", "Set aside:"]
        lines += [f"  {a.path}: {a.why}" for a in report.set_aside[:MAX_ROWS]]
    lines += [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(lines) + "\n"
