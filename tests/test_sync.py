"""`sync`: copy only the difference, remote to remote, within a download budget."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from collections import Counter

from projects import FILES, PREFIX, TOKEN, World, cli_env, dvc_env
from servers.faults import Fault
from servers.moto_s3 import s3_client


def _file_objects(world: World) -> list[str]:
    return sorted(
        rel for rel in world.project.objects("data/images.dvc") if not rel.endswith(".dir")
    )


def _s3_gets(world: World) -> list[str]:
    """Object paths the S3 side served a body for."""
    return [
        r.path.split(f"{PREFIX}/", 1)[1]
        for r in world.s3.requests
        if r.kind == "GET" and 200 <= r.status < 300 and f"{PREFIX}/files/" in r.path
    ]


def _uploads(world: World) -> list[str]:
    return [
        r.path.split("repo.dvc/", 1)[1]
        for r in world.dagshub.requests
        if r.method in ("POST", "PUT")
    ]


def _dvc_pull(world: World, remote: str, name: str) -> subprocess.CompletedProcess[str]:
    clone = world.clone(name)
    (clone.root / ".dvc" / "config.local").write_text(
        f"['remote \"dagshub\"']\n    auth = basic\n    user = {TOKEN}\n    password = {TOKEN}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "-r", remote],
        cwd=clone.root,
        env=dvc_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_fresh_runner_copies_exactly_what_dagshub_lacks(world: World) -> None:
    gone = _file_objects(world)[: FILES // 10]
    for rel in gone:
        world.dagshub.delete(rel)
    world.s3.clear_log()
    runner = world.clone("runner")  # empty DVC cache
    run = world.run_in(runner, "sync", "--budget", "backblaze=1GB")
    assert run.code == 0, run.stderr + run.stdout
    assert sorted(_s3_gets(world)) == sorted(gone)  # exactly those, once each
    assert run.report is not None
    assert [(p["source"], p["destination"], p["objects_copied"]) for p in run.report["pairs"]] == [
        ("backblaze", "dagshub", len(gone))
    ]
    assert run.remote("backblaze")["bytes_downloaded"] == sum(
        (world.project.root / ".dvc" / "cache" / rel).stat().st_size for rel in gone
    )
    done = _dvc_pull(world, "dagshub", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list((runner.root / ".dvc" / "tmp").rglob("*.part"))


def test_uncapped_dagshub_serves_before_b2_when_both_hold_an_object(world: World) -> None:
    archive = world.project.root.parent / "archive"
    archive.mkdir()
    runner = world.clone()  # empty cache: manifests come from a remote too
    runner.add_remote("archive", str(archive))
    world.s3.clear_log()
    run = world.run_in(runner, "sync", "-r", "backblaze,dagshub,archive")
    assert run.code == 0, run.stderr + run.stdout
    assert _s3_gets(world) == []  # not even the manifest came from B2
    assert run.remote("backblaze")["bytes_downloaded"] == 0
    assert run.report is not None
    assert {(p["source"], p["destination"]) for p in run.report["pairs"]} == {
        ("dagshub", "archive")
    }


def test_objects_missing_both_ways_complete_in_one_run(world: World) -> None:
    files = _file_objects(world)
    client = s3_client(world.moto.endpoint_url)
    for rel in files[:3]:
        world.dagshub.delete(rel)
    for rel in files[3:7]:
        client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{rel}")
    run = world.run_in(world.clone(), "sync")
    assert run.code == 0, run.stderr + run.stdout
    pairs = {(p["source"], p["destination"]): p["objects_copied"] for p in run.report["pairs"]}  # type: ignore[index]
    assert pairs == {("backblaze", "dagshub"): 3, ("dagshub", "backblaze"): 4}
    assert world.verify().code == 0


def test_corrupt_copy_is_never_spread(world: World) -> None:
    archive = world.project.root.parent / "archive"
    archive.mkdir()
    world.project.add_remote("archive", str(archive))
    victim = _file_objects(world)[5]
    client = s3_client(world.moto.endpoint_url)
    client.put_object(Bucket=world.bucket, Key=f"{PREFIX}/{victim}", Body=b"bit rot")
    # B2 first on purpose (by default the uncapped DagsHub serves first and B2's copy is never read).
    run = world.run("sync", "-r", "backblaze,dagshub,archive", "--prefer-source", "backblaze")
    assert run.code == 1, run.stderr + run.stdout
    assert run.report is not None
    assert [(c["path"], c["missing_on"]) for c in run.report["corrupt"]] == [
        (world.project.objects("data/images.dvc")[victim], ["backblaze"])
    ]
    good = (world.project.root / ".dvc" / "cache" / victim).read_bytes()
    assert (archive / victim).read_bytes() == good
    assert run.report["missing"] == []
    assert len(list(archive.rglob("*"))) > FILES


def test_budget_is_never_exceeded_and_uncapped_remote_serves_first(world: World) -> None:
    archive = world.project.root.parent / "archive"
    archive.mkdir()
    world.project.add_remote("archive", str(archive))
    only_on_s3 = _file_objects(world)[:8]
    for rel in only_on_s3:
        world.dagshub.delete(rel)
    sizes = [(world.project.root / ".dvc" / "cache" / rel).stat().st_size for rel in only_on_s3]
    budget = sum(sorted(sizes)[:3]) + 1
    world.s3.clear_log()
    run = world.run("sync", "-r", "backblaze,dagshub,archive", "--budget", f"backblaze={budget}B")
    assert run.code == 1, run.stderr + run.stdout
    served_by_s3 = sum(
        r.bytes_out for r in world.s3.requests if r.kind == "GET" and r.status == 200
    )
    assert served_by_s3 <= budget
    assert run.remote("backblaze")["bytes_downloaded"] <= budget
    got_from_s3 = set(_s3_gets(world))
    assert got_from_s3 <= set(only_on_s3)  # everything else came from dagshub
    assert run.report is not None and run.report["skipped_budget"]
    skipped = {m["md5"] for m in run.report["skipped_budget"]}
    assert len(skipped) + len(got_from_s3) == len(only_on_s3)


def test_the_largest_file_waiting_is_copied_first(world: World) -> None:
    # A big file started last would run on alone after all the small ones: of the copies
    # waiting for a free slot, it goes first. Here B2's listing answers last (it is slowed),
    # so every copy is known at once.
    model = next(iter(world.project.objects("data/model.bin.dvc")))
    for rel in [*_file_objects(world), model]:
        world.dagshub.delete(rel)
    world.s3.set_fault(Fault("delay", seconds=1.5, only=("LIST",)))
    world.s3.clear_log()
    run = world.run("sync", "-j", "2")
    assert run.code == 0, run.stderr + run.stdout
    gets = sorted(
        (r for r in world.s3.requests if r.kind == "GET" and r.status == 200),
        key=lambda r: r.arrived,
    )
    assert len(gets) == FILES + 1
    assert any(r.path.endswith(model) for r in gets[:2]), [r.path for r in gets[:3]]


def test_copies_start_while_dagshub_is_still_being_checked(world: World) -> None:
    # DagsHub answers one object per request, 50 ms each: the first copies go up long before
    # its last answer, and the report is the one a run without overlap would write.
    gone = _file_objects(world)
    for rel in gone:
        world.dagshub.delete(rel)
    world.dagshub.latency = 0.05
    world.dagshub.clear_log()
    run = world.run("sync", "-j", "4")
    assert run.code == 0, run.stderr + run.stdout
    methods = [r.method for r in world.dagshub.requests]
    last_head = len(methods) - 1 - methods[::-1].index("HEAD")
    assert methods.index("POST") < last_head, methods
    assert run.report is not None
    assert [(p["source"], p["destination"], p["objects_copied"]) for p in run.report["pairs"]] == [
        ("backblaze", "dagshub", len(gone))
    ]
    assert world.verify().code == 0


def test_dry_run_changes_nothing_and_plans_what_a_real_run_copies(world: World) -> None:
    for rel in _file_objects(world)[:6]:
        world.dagshub.delete(rel)
    world.dagshub.clear_log()
    world.s3.clear_log()
    plan = world.run("sync", "--dry-run")
    assert plan.code == 0, plan.stderr + plan.stdout
    assert world.dagshub.count("POST") + world.dagshub.count("PUT") == 0
    assert world.s3.count("PUT") + world.s3.count("POST") == 0
    real = world.run("sync")
    assert real.code == 0
    assert plan.report is not None and real.report is not None
    assert plan.report["pairs"] == real.report["pairs"]
    assert "Would copy 6 objects" in plan.stdout


def test_shards_split_one_sync_without_overlap(world: World) -> None:
    for rel in _file_objects(world)[:12]:
        world.dagshub.delete(rel)
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    world.dagshub.delete(manifest)
    world.dagshub.clear_log()
    first = world.run("sync", "--shard", "1/2")
    second = world.run("sync", "--shard", "2/2")
    assert first.code in (0, 1) and second.code == 0, second.stderr + second.stdout
    uploads = Counter(_uploads(world))
    assert set(uploads) == {*_file_objects(world)[:12], manifest}
    assert max(uploads.values()) == 1  # no object copied twice
    assert world.verify().code == 0


def test_second_sync_copies_nothing(world: World) -> None:
    for rel in _file_objects(world)[:4]:
        world.dagshub.delete(rel)
    assert world.run("sync").code == 0
    again = world.run("sync")
    assert again.code == 0
    assert again.report is not None and again.report["pairs"] == []
    assert "Nothing to copy" in again.stdout


def test_sync_killed_midway_leaves_no_partial_object_and_resumes(world: World) -> None:
    files = _file_objects(world)
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    for rel in [*files, manifest]:
        world.dagshub.delete(rel)
    world.s3.set_fault(Fault("delay", seconds=0.3, only=("GET",)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc_multiremote", "sync", "-j", "2"],
        cwd=world.project.root,
        env=cli_env(world.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(world.dagshub.object_paths()) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    stored = world.dagshub.object_paths()
    assert 0 < len(stored) < FILES + 1
    for rel in stored:  # every visible object is whole
        data = (world.dagshub.root / rel).read_bytes()
        expected = rel.split("/", 2)[2].replace("/", "")
        if rel.endswith(".dir"):
            assert hashlib.md5(data).hexdigest() + ".dir" == expected
        else:
            assert hashlib.md5(data).hexdigest() == expected
    assert manifest not in stored
    assert not (world.project.root / ".dvc" / "config.local").exists()
    world.s3.clear_faults()
    again = world.run("sync")
    assert again.code == 0, again.stderr + again.stdout
    assert world.verify().code == 0


def test_dead_destination_does_not_stop_the_others(world: World, dead_url: str) -> None:
    archive = world.project.root.parent / "archive"
    archive.mkdir()
    world.project.add_remote("archive", str(archive))
    world.project.add_remote("dagshub", dead_url + "/owner/repo.dvc")
    run = world.run("sync", "-r", "backblaze,dagshub,archive")
    assert run.code == 3, run.stderr + run.stdout
    assert run.remote("dagshub")["state"] == "unreachable"
    assert world.run("verify", "-r", "backblaze,archive").code == 0


def test_bad_sync_options_are_one_sentence(world: World) -> None:
    for args, says in (
        (["--budget", "backblaze=lots"], "--budget 'backblaze=lots' has no valid size"),
        (["--budget", "nowhere=1GB"], "--budget names remote 'nowhere'"),
        (["--shard", "3/2"], "--shard must look like I/N with 1 <= I <= N"),
        (["--streams-cutoff", "big"], "--streams-cutoff must be a size like 64MB or 1GiB"),
        (["--streams", "0"], "--streams: must be a whole number of at least 1"),
    ):
        run = world.run("sync", *args)
        assert run.code == 2, (args, run.stderr)
        assert says in run.stderr


def test_legacy_dvc2_objects_are_copied_by_their_own_hash(world: World) -> None:
    """A DVC 2 output (md5 of the text with CRLF turned to LF) in the remote's legacy layout."""
    raw = b"id,label\r\n1,cat\r\n2,dog\r\n"
    md5 = hashlib.md5(raw.replace(b"\r\n", b"\n")).hexdigest()
    (world.project.root / "data" / "legacy.csv").write_bytes(raw)
    (world.project.root / "data" / "legacy.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(raw)}\n  path: legacy.csv\n"
    )
    world.project.commit("A DVC 2 era output")
    legacy_key = f"{md5[:2]}/{md5[2:]}"
    s3_client(world.moto.endpoint_url).put_object(
        Bucket=world.bucket, Key=f"{PREFIX}/{legacy_key}", Body=raw
    )
    before = world.verify()
    assert before.code == 1 and before.missing_paths("dagshub") == {"data/legacy.csv"}
    run = world.run("sync")
    assert run.code == 0, run.stderr + run.stdout
    assert (world.dagshub.root / legacy_key).read_bytes() == raw
    assert world.verify().code == 0


def test_manifest_missing_too_is_downloaded_once_on_a_fresh_runner(world: World) -> None:
    gone = _file_objects(world)[:4]
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    for rel in [*gone, manifest]:
        world.dagshub.delete(rel)
    world.s3.clear_log()
    run = world.run_in(world.clone("runner"), "sync", "--budget", "backblaze=1GB")
    assert run.code == 0, run.stderr + run.stdout
    assert sorted(_s3_gets(world)) == sorted([*gone, manifest])  # the manifest once, not twice
    assert world.verify().code == 0


def _cached_size(world: World, rel: str) -> int:
    return (world.project.root / ".dvc" / "cache" / rel).stat().st_size


def _s3_body_bytes(world: World) -> int:
    """Body bytes the S3 side served (a manifest is read with a ranged GET: 206)."""
    return sum(r.bytes_out for r in world.s3.requests if r.kind == "GET" and r.status in (200, 206))


def test_a_manifest_read_from_b2_counts_against_the_budget(world: World) -> None:
    gone = _file_objects(world)[:4]
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    for rel in [*gone, manifest]:
        world.dagshub.delete(rel)
    needed = sum(_cached_size(world, rel) for rel in [*gone, manifest])
    world.s3.clear_log()
    runner = world.clone("runner")  # a fresh runner: no manifest in its cache
    run = world.run_in(runner, "sync", "--budget", f"backblaze={needed}B")
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("backblaze")["bytes_downloaded"] == needed == _s3_body_bytes(world)
    assert world.verify().code == 0

    # One byte less: the last file no longer fits, and the budget still holds.
    for rel in [*gone, manifest]:
        world.dagshub.delete(rel)
    world.s3.clear_log()
    run = world.run_in(world.clone("runner2"), "sync", "--budget", f"backblaze={needed - 1}B")
    assert run.code == 1, run.stderr + run.stdout
    assert _s3_body_bytes(world) <= needed - 1
    assert run.report is not None and run.report["skipped_budget"]


def test_a_budget_too_small_for_the_manifest_copies_nothing_of_the_directory(
    world: World,
) -> None:
    gone = _file_objects(world)[:4]
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    for rel in [*gone, manifest]:
        world.dagshub.delete(rel)
    world.s3.clear_log()
    budget = _cached_size(world, manifest) - 1
    run = world.run_in(world.clone("runner"), "sync", "--budget", f"backblaze={budget}B")
    assert run.code == 1, run.stderr + run.stdout
    assert _s3_body_bytes(world) == 0
    assert not _uploads(world)  # above all, no manifest without its files
    assert run.report is not None
    skipped = {item["path"] for item in run.report["skipped_budget"]}
    assert "data/images" in skipped
    assert "budget" in (run.stdout + run.stderr).lower()


def test_dagshub_refusing_credentials_is_named_and_nothing_is_called_complete(
    world: World,
) -> None:
    runner = world.clone("runner")  # empty cache: the directory can only be expanded remotely
    run = world.run_in(runner, "sync", env={"DAGSHUB_TOKEN": "not-the-token"})
    assert run.code == 3, run.stdout + run.stderr
    assert run.report is not None and run.report["exit_code"] == 3
    assert run.report["ok"] is False
    assert "could not check dagshub: credentials refused" in run.stdout
    assert "every remote holds" not in run.stdout + (run.markdown or "")
    assert {r["name"]: r["state"] for r in run.report["remotes"]}["dagshub"] == "auth"
