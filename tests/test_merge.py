"""A matrix of `--shard I/N` jobs, merged with `merge-reports`, says what one run says."""

from __future__ import annotations

import json
from pathlib import Path

from projects import FILES, World


def _remove_some(world: World) -> int:
    """Delete a quarter of data/images' files from DagsHub; return their bytes."""
    files = sorted(r for r in world.project.objects("data/images.dvc") if not r.endswith(".dir"))
    size = 0
    for rel in files[: FILES // 4]:
        size += (world.dagshub.root / rel).stat().st_size
        world.dagshub.delete(rel)
    return size


def _essence(report: dict) -> dict:  # type: ignore[type-arg]
    """What must match between the merged and the unsharded report (not request counts)."""
    return {
        "exit_code": report["exit_code"],
        "ok": report["ok"],
        "totals": report["totals"],
        "remotes": [
            {
                k: r[k]
                for k in ("name", "state", "objects_present", "objects_missing", "bytes_missing")
            }
            for r in report["remotes"]
        ],
        "outputs": sorted(
            (o["path"], json.dumps(o["missing"], sort_keys=True), o["files"])
            for o in report["outputs"]
        ),
        "missing": sorted(
            (m["md5"], m["path"], m["size"], tuple(m["missing_on"])) for m in report["missing"]
        ),
    }


def test_merged_shard_reports_equal_the_unsharded_report(world: World, tmp_path: Path) -> None:
    _remove_some(world)
    whole = world.verify()
    assert whole.code == 1 and whole.report is not None
    shard_files = []
    for index in (1, 2, 3):
        path = tmp_path / f"shard-{index}.json"
        shard = world.project.run("verify", "--shard", f"{index}/3", env=world.env)
        assert shard.report is not None, shard.stderr
        path.write_text(json.dumps(shard.report))
        shard_files.append(str(path))
    assert (
        sum(s for s in (json.loads(Path(p).read_text())["totals"]["objects"] for p in shard_files))
        == FILES + 2
    )
    merged = world.project.run("merge-reports", *shard_files)
    assert merged.code == 1, merged.stderr
    assert merged.report is not None
    assert _essence(merged.report) == _essence(whole.report)
    assert "dagshub lacks 10 of 42 objects" in merged.stdout


def test_merged_sync_shards_sum_their_copies(world: World, tmp_path: Path) -> None:
    removed_bytes = _remove_some(world)
    paths = []
    for index in (1, 2):
        run = world.run("sync", "--shard", f"{index}/2")
        path = tmp_path / f"sync-{index}.json"
        path.write_text(json.dumps(run.report))
        paths.append(str(path))
    merged = world.project.run("merge-reports", *paths)
    assert merged.report is not None
    assert merged.report["pairs"] == [
        {
            "source": "backblaze",
            "destination": "dagshub",
            "objects_copied": FILES // 4,
            "bytes_copied": removed_bytes,
        }
    ]
    assert world.verify().code == 0


def test_merge_rejects_what_is_not_a_report(tmp_path: Path, world: World) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text("[1, 2]")
    run = world.project.run("merge-reports", str(bogus))
    assert run.code == 2
    assert "is not a dvc-multiremote JSON report" in run.stderr
