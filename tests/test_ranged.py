"""Large objects as several ranged GETs at once: B2 answers each range, a server that ignores
Range gets one stream, and the bytes that reach the cache are checked whole either way."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest

from projects import PREFIX, World, md5_of
from servers.moto_s3 import s3_client

if TYPE_CHECKING:
    from projects import Project

from dvc_multiremote.remotes.ranged import (
    MIN_PART,
    RangeIgnored,
    SizeDiffers,
    Streams,
    check_range,
)

BIG = "data/big.bin"
BIG_SIZE = 3 * MIN_PART + 12_345  # three ranges with --streams 4 (at most size // MIN_PART)
STREAMS = ["--streams", "4", "--streams-cutoff", "16MiB"]


@pytest.fixture
def big(world: World) -> str:
    """``data/big.bin`` (24 MiB and a bit) committed and on both remotes; returns its md5."""
    project = world.project
    project.write_file(BIG, BIG_SIZE, seed=7)
    project.dvc_add(BIG)
    project.commit("Add a large file")
    project.seed_s3(s3_client(world.moto.endpoint_url), world.bucket, PREFIX, f"{BIG}.dvc")
    project.seed_dir(world.dagshub.root, f"{BIG}.dvc")
    return md5_of((project.root / BIG).read_bytes())


def _big_in(project: Project, md5: str) -> bool:
    return md5_of((project.root / BIG).read_bytes()) == md5


def test_a_large_object_comes_from_b2_as_ranged_gets_at_once(world: World, big: str) -> None:
    world.s3.clear_log()
    clone = world.clone()
    run = world.run_in(clone, "pull", "-r", "backblaze", *STREAMS)
    assert run.code == 0, run.stdout + run.stderr
    assert _big_in(clone, big)
    gets = [r for r in world.s3.requests if r.kind == "GET" and big[2:] in r.path]
    ranges = sorted(r.headers.get("Range", "") for r in gets)
    step = -(-BIG_SIZE // 3)
    assert ranges == sorted(
        f"bytes={start}-{min(start + step, BIG_SIZE) - 1}" for start in range(0, BIG_SIZE, step)
    )
    assert all(r.status == 206 for r in gets)
    assert sum(r.bytes_out for r in gets) == BIG_SIZE  # each byte once
    assert max(r.in_flight for r in gets) >= 2  # at once, not one after the other
    assert world.run_in(clone, "verify", "-r", "backblaze").code == 0


def test_a_server_that_ignores_range_sends_the_object_in_one_stream(
    world: World, big: str, dead_url: str
) -> None:
    clone = world.clone_with_b2_dead(dead_url)
    run = world.run_in(clone, "pull", *STREAMS)
    assert run.code == 0, run.stdout + run.stderr
    assert _big_in(clone, big)
    gets = [r for r in world.dagshub.requests if r.method == "GET" and big[2:] in r.path]
    # One ranged GET answered whole (200) and dropped after its first bytes, then one stream.
    assert [bool(r.headers.get("Range")) for r in gets] == [True, False]
    assert run.remote("dagshub")["objects_served"] >= 1


def test_sync_copies_a_large_object_read_as_ranges(world: World, big: str) -> None:
    (world.dagshub.root / "files" / "md5" / big[:2] / big[2:]).unlink()
    world.s3.clear_log()
    runner = world.clone("runner")
    run = world.run_in(runner, "sync", *STREAMS)
    assert run.code == 0, run.stdout + run.stderr
    copied = world.dagshub.root / "files" / "md5" / big[:2] / big[2:]
    assert md5_of(copied.read_bytes()) == big
    ranged = [r for r in world.s3.requests if r.kind == "GET" and r.headers.get("Range")]
    assert len(ranged) == 3
    assert sum(r.bytes_out for r in ranged) == BIG_SIZE


def test_jobs_bounds_the_requests_of_ranged_downloads_too(world: World, big: str) -> None:
    """Three large objects, 3 ranges each, --jobs 2: never more than 2 GETs at the remote at
    once, and every object still arrives (no range waits forever on a slot its sibling holds)."""
    project = world.project
    for number in (1, 2):
        project.write_file(f"data/big{number}.bin", BIG_SIZE, seed=10 + number)
        project.dvc_add(f"data/big{number}.bin")
    project.commit("Two more large files")
    project.seed_s3(
        s3_client(world.moto.endpoint_url),
        world.bucket,
        PREFIX,
        "data/big1.bin.dvc",
        "data/big2.bin.dvc",
    )
    clone = world.clone()
    world.s3.clear_log()
    run = world.run_in(clone, "pull", "-r", "backblaze", "--jobs", "2", *STREAMS)
    assert run.code == 0, run.stdout + run.stderr
    assert _big_in(clone, big)
    assert world.s3.max_in_flight <= 2
    ranged = [r for r in world.s3.requests if r.kind == "GET" and r.headers.get("Range")]
    assert len(ranged) == 9


def test_a_content_range_that_gives_no_size_means_one_stream() -> None:
    check_range("bytes 0-9/100", 0, 9, 100)
    with pytest.raises(SizeDiffers):
        check_range("bytes 0-9/99", 0, 9, 100)
    for answer in (None, "", "bytes 0-9/*", "bytes 10-19/100"):
        with pytest.raises(RangeIgnored):
            check_range(answer, 0, 9, 100)


@pytest.mark.parametrize(
    ("streams", "size", "expected"),
    [
        (Streams(4, 64 * 2**20), 63 * 2**20, None),  # under the cutoff
        (Streams(1, 0), 10 * 2**30, None),  # one stream asked for
        (Streams(4, 0), 2 * MIN_PART - 1, None),  # too small for two ranges of MIN_PART
        (Streams(4, 0), 2 * MIN_PART, 2),
        (Streams(4, 64 * 2**20), 2**30, 4),
        (Streams(16, 0), 5 * MIN_PART + 1, 5),
    ],
)
def test_ranges_cover_the_object_once(streams: Streams, size: int, expected: int | None) -> None:
    parts = streams.split(size)
    if expected is None:
        assert parts is None
        return
    assert parts is not None
    assert len(parts) == expected
    assert parts[0][0] == 0
    assert parts[-1][1] == size - 1
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(parts))
    lengths = [end - start + 1 for start, end in parts]
    assert max(lengths) - min(lengths) < len(parts)  # equal shares, give or take a byte each
