"""Pure pieces: which remote gets which credentials, how answers are classified, rendering."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from dvc_multiremote.credentials import host_matches, plan_grants
from dvc_multiremote.errors import ExitCode, worst
from dvc_multiremote.remotes.classify import classify_status
from dvc_multiremote.remotes.concurrency import Throttle, bounded_gather
from dvc_multiremote.remotes.spec import RemoteSpec
from dvc_multiremote.settings import Credentials

if TYPE_CHECKING:
    from collections.abc import Callable


def _creds(**values: str) -> Credentials:
    return Credentials.model_validate(values)


DAGSHUB_HTTP = RemoteSpec("dagshub", "https://dagshub.com/o/r.dvc", "http")
DAGSHUB_S3 = RemoteSpec("dagshub-s3", "s3://dvc", "s3", "https://dagshub.com/o/r.s3")
B2 = RemoteSpec("backblaze", "s3://bucket/store", "s3", "https://s3.us-west-004.backblazeb2.com")
ELSEWHERE = RemoteSpec("mirror", "https://example.org/store", "http")


def test_dagshub_token_goes_to_dagshub_hosts_only_in_the_right_form() -> None:
    grants, warnings = plan_grants(
        [DAGSHUB_HTTP, DAGSHUB_S3, B2, ELSEWHERE], _creds(DAGSHUB_TOKEN="tok")
    )
    by_remote = {g.remote: {k: v.get_secret_value() for k, v in g.options.items()} for g in grants}
    assert by_remote["dagshub"] == {"auth": "basic", "user": "tok", "password": "tok"}
    assert by_remote["dagshub-s3"] == {"access_key_id": "tok", "secret_access_key": "tok"}
    assert "mirror" not in by_remote and "backblaze" not in by_remote
    assert any("'mirror'" in w and "DAGSHUB_HOSTS" in w for w in warnings)


def test_b2_keys_go_to_b2_endpoints_and_user_token_alias_works() -> None:
    creds = _creds(
        DAGSHUB_USER_TOKEN="tok", DAGSHUB_USER="alice", B2_KEY_ID="kid", B2_APPLICATION_KEY="k"
    )
    grants, _ = plan_grants([DAGSHUB_HTTP, B2], creds)
    by_remote = {g.remote: {k: v.get_secret_value() for k, v in g.options.items()} for g in grants}
    assert by_remote["backblaze"] == {"access_key_id": "kid", "secret_access_key": "k"}
    assert by_remote["dagshub"]["user"] == "alice"


def test_dvc_remote_variables_go_to_the_named_remote_and_win() -> None:
    creds = Credentials(remote_options={"DVC_REMOTE_MY_MINIO_SECRET_ACCESS_KEY": SecretStr("s")})
    spec = RemoteSpec("my-minio", "s3://b", "s3", "http://minio.local:9000")
    grants, _ = plan_grants([spec], creds)
    assert [(g.remote, list(g.options)) for g in grants] == [("my-minio", ["secret_access_key"])]


@pytest.mark.parametrize(
    ("netloc", "patterns", "expected"),
    [
        (("s3.us-west-004.backblazeb2.com", None), ["*.backblazeb2.com"], True),
        (("backblazeb2.com.evil.org", None), ["*.backblazeb2.com"], False),
        (("127.0.0.1", 9000), ["127.0.0.1:9000"], True),
        (("127.0.0.1", 9001), ["127.0.0.1:9000"], False),
        (None, ["*"], False),
    ],
)
def test_host_patterns(
    netloc: tuple[str, int | None] | None, patterns: list[str], expected: bool
) -> None:
    assert host_matches(netloc, patterns) is expected


def test_classification_of_answers() -> None:
    cap = "Cannot download file, download bandwidth or transaction (Class B) cap exceeded."
    assert classify_status(404) is None
    assert classify_status(403, "AccessDenied", cap).state == "cap-exceeded"  # type: ignore[union-attr]
    assert classify_status(403, "AccessDenied", "Access Denied").state == "auth"  # type: ignore[union-attr]
    assert classify_status(401).state == "auth"  # type: ignore[union-attr]
    slow = classify_status(503, "SlowDown", retry_after=2)
    assert slow is not None and slow.transient and slow.retry_after == 2


def test_exit_code_precedence() -> None:
    assert worst(ExitCode.DATA, ExitCode.REMOTE) == ExitCode.REMOTE
    assert worst(ExitCode.USAGE, ExitCode.REMOTE, ExitCode.DATA) == ExitCode.USAGE
    assert worst(ExitCode.OK) == ExitCode.OK


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-22T21:56:00.000Z",  # a listing's LastModified
        "2026-11-22T21:56:00.123456+01:00",
        "Sun, 22 Nov 2026 21:56:00 GMT",  # a GetObject's Last-Modified header
        "1700000000",  # epoch seconds
        "2026-11-22 21:56:00",  # no zone: botocore's own rules
    ],
)
def test_timestamps_parse_exactly_as_botocore_parses_them(value: str) -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    from dvc_multiremote.remotes.timestamps import parse_timestamp

    assert parse_timestamp(value) == botocore_parse(value)


def _run_throttled(
    jobs: int | Throttle, items: int, on_item: Callable[[int], None]
) -> list[tuple[float, int]]:
    """Run ``items`` 10 ms tasks through ``bounded_gather``: (time, how many ran) as each began."""
    seen: list[tuple[float, int]] = []
    running = 0

    async def work(item: int) -> None:
        nonlocal running
        running += 1
        seen.append((time.monotonic(), running))
        on_item(item)
        await asyncio.sleep(0.01)
        running -= 1

    asyncio.run(bounded_gather(range(items), work, jobs))
    return seen


def test_requests_in_flight_halve_when_told_to_slow_down_and_recover_after_a_calm_spell() -> None:
    assert max(n for _, n in _run_throttled(16, 200, lambda _: None)) == 16
    throttle = Throttle(64, calm=0.2)
    done: list[int] = []
    told: list[float] = []

    def on_item(item: int) -> None:
        done.append(item)
        if item == 100:
            told.append(time.monotonic())
            for _ in range(10):  # one burst of refusals counts once
                throttle.slow_down("dagshub")
        else:
            throttle.answered()

    seen = _run_throttled(throttle, 6000, on_item)
    assert sorted(done) == list(range(6000))  # every item once
    assert throttle.lowest == 32
    before = [n for t, n in seen if t < told[0]]
    # Once the tasks already running have finished, and until a calm spell has passed:
    after = [n for t, n in seen if told[0] + 0.05 < t < told[0] + 0.2]
    assert max(before) == 64 and after and max(after) <= 32, (max(before), after)
    assert throttle.limit == 64  # back up after calm spells of normal answers


def test_throttle_never_goes_below_its_floor_or_above_the_jobs_asked_for() -> None:
    small = Throttle(2, calm=0)
    small.slow_down("dagshub")
    assert small.limit == 2
    throttle = Throttle(64, calm=0)
    for _ in range(10):
        throttle.slow_down("dagshub")
    assert throttle.limit == 4
    for _ in range(100):
        throttle.answered()
    assert throttle.limit == 64


def test_a_progress_line_says_objects_bytes_rate_and_time_left() -> None:
    import io

    from dvc_multiremote.progress import Progress

    out = io.StringIO()
    progress = Progress("pull", 10_000, 3_100_000_000, stream=out, every=0.0)
    progress.started -= 27.0  # as if 27 s had passed
    progress.advance(1_200_000_000, objects=4_100)
    line = out.getvalue().strip()
    assert line.startswith("pull: 4,100 of 10,000 objects, 1.2 GB of 3.1 GB, ")
    assert line.endswith("left") and "MB/s" in line
    quiet = io.StringIO()
    Progress("pull", 10, 100, stream=quiet, every=0.0, enabled=False).advance(10)
    assert quiet.getvalue() == ""
