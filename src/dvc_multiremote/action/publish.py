"""What a step shows: its outputs, its title and summary, its annotations; all read the verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from dvc_multiremote.action import runner
from dvc_multiremote.errors import ExitCode
from dvc_multiremote.report import OutputReport, PullReport, PushReport, Report, SyncReport

if TYPE_CHECKING:
    from dvc_multiremote.verdict import Verdict


class ActionOutputs(NamedTuple):
    """Every output ``action.yml`` declares; written all at once or not at all."""

    ok: bool
    exit_code: int
    missing_count: int | None
    remotes_used: list[str]
    transferred_count: int | None
    transferred_bytes: int | None
    report: str

    @classmethod
    def failed(cls, code: int, report: str = "") -> ActionOutputs:
        """Outputs of a run that stopped before it had a report (counts unknown)."""
        return cls(False, code, None, [], None, None, report)

    def as_dict(self) -> dict[str, str]:
        def text(value: int | None) -> str:
            return "" if value is None else str(value)

        return {
            "ok": "true" if self.ok else "false",
            "exit-code": str(self.exit_code),
            "missing-count": text(self.missing_count),
            "remotes-used": ",".join(self.remotes_used),
            "transferred-count": text(self.transferred_count),
            "transferred-bytes": text(self.transferred_bytes),
            "report": self.report,
        }


def transferred(report: Report) -> tuple[int, int]:
    """Objects and bytes moved: pulled (served by remotes), pushed, or copied by ``sync``.

    A dry run counts what it would move.
    """
    if isinstance(report, SyncReport):
        return (
            sum(pair.objects_copied for pair in report.pairs),
            sum(pair.bytes_copied for pair in report.pairs),
        )
    objects = sum((r.objects_served or 0) + (r.objects_pushed or 0) for r in report.remotes)
    size = sum((r.bytes_served or 0) + (r.bytes_pushed or 0) for r in report.remotes)
    return objects, size


def outputs_for(report: Report, verdict: Verdict, report_rel: str) -> ActionOutputs:
    """The step's outputs: ``ok`` and ``exit-code`` are the verdict's, whatever the step does."""
    objects, size = transferred(report)
    # pull names the remotes that served data (the fallback shows); the others every remote.
    used = (
        report.remotes_used if isinstance(report, PullReport) else [r.name for r in report.remotes]
    )
    return ActionOutputs(
        ok=verdict.ok,
        exit_code=int(verdict.code),
        missing_count=len(report.missing),
        remotes_used=used,
        transferred_count=objects,
        transferred_bytes=size,
        report=report_rel,
    )


def annotations_for(report: Report, prefix: str, level: runner.Level) -> list[runner.Annotation]:
    """One annotation per output with missing data, at the line of its md5."""
    found = []
    for out in report.outputs_with_gaps:
        parts = []
        for remote in out.missing:
            what = f"{out.describe_gap(remote)} of {out.path}" if out.is_dir else out.path
            if isinstance(report, PullReport):
                parts.append(f"{what} could be pulled from no remote")
            elif isinstance(report, PushReport):
                parts.append(f"{what} could not be pushed to {remote}")
            else:
                parts.append(f"{what} {'are' if out.is_dir else 'is'} missing on {remote}")
        if out.reason:
            parts.append(f"{out.path}: {out.reason}")
        message = "; ".join(parts) + "."
        if out.fixes:
            message += " Fix: " + " ; ".join(out.fixes)
        found.append(
            runner.Annotation(
                level, message, _title(report, out), _join(prefix, out.dvc_file), out.line
            )
        )
    return found


def _title(report: Report, out: OutputReport) -> str:
    remotes = ", ".join(out.missing)
    if isinstance(report, PullReport):
        return "Not pulled"
    if isinstance(report, PushReport):
        return f"Not pushed to {remotes}" if remotes else "Not pushed"
    if out.reason and not remotes:
        return "Files unknown"
    return f"Missing on {remotes}" if remotes else "Missing everywhere"


def _join(prefix: str, path: str) -> str:
    return path if prefix in ("", ".") else f"{prefix}/{path}"


def status(report: Report, verdict: Verdict) -> str:
    """The title's verdict: ✅ only when the verdict is OK; every unusable remote named."""
    if verdict.code == ExitCode.OK:
        return "✅ all data in place"
    if verdict.code == ExitCode.USAGE:
        return "⛔ configuration problem"
    parts = ["❌ data missing"] if verdict.short else []
    if verdict.unusable:
        verb = "not checked" if report.command in ("verify", "demo") else "could not use"
        parts.append(f"⚠️ {verb}: " + "; ".join(u.describe() for u in verdict.unusable))
    return " · ".join(parts) or "❌ data missing"


def _alerts(notes: list[str]) -> list[str]:
    lines: list[str] = []
    for note in notes:
        lines += ["> [!WARNING]", f"> {note}", ""]
    return lines


def render_summary(
    report: Report,
    verdict: Verdict,
    notes: list[str],
    run_url: str | None,
    head_sha: str | None,
) -> str:
    """The Markdown for the job summary and the PR comment."""
    from dvc_multiremote.render import to_markdown

    title = f"dvc-multiremote {report.command}: {status(report, verdict)}"
    body = to_markdown(report, verdict, title=title)
    head, _, rest = body.partition("\n")
    lines = [head, "", *_alerts(notes)] if notes else [head]
    text = "\n".join(lines) + "\n" + rest
    footer = []
    if run_url:
        footer.append(f"[Workflow run]({run_url})")
    if head_sha is not None:
        footer.append(f"head {head_sha[:12]}")
    if footer:
        text += "\n<sub>" + " · ".join(footer) + "</sub>\n"
    return text
