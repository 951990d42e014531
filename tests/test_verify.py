"""`dvc-multiremote verify` against real S3 (moto) and DagsHub-like HTTP servers on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from projects import B2_KEY, B2_KEY_ID, FILES, PREFIX, TOKEN, Project, World, cli_env
from servers.dagshub import DagsHubRemoteServer
from servers.faults import Fault
from servers.moto_s3 import s3_client

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from servers.faults import FaultProxy

    MakeProxy = Callable[[str], FaultProxy]


def _image_objects(world: World) -> list[tuple[str, str]]:
    """(object path, workspace path) of data/images' files, not its manifest, in a fixed order."""
    objects = world.project.objects("data/images.dvc")
    return sorted((rel, path) for rel, path in objects.items() if not rel.endswith(".dir"))


def test_both_remotes_complete_exit_0(world: World) -> None:
    run = world.verify()
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    assert run.report["ok"] is True
    assert run.report["totals"]["objects"] == FILES + 2
    for name in ("backblaze", "dagshub"):
        remote = run.remote(name)
        assert remote["state"] == "ok"
        assert remote["objects_present"] == FILES + 2
        assert remote["objects_missing"] == 0
    assert "All 42 objects are on every remote" in run.stdout


def test_files_gone_from_http_remote_but_manifest_kept_are_reported_exactly(world: World) -> None:
    gone = _image_objects(world)[: FILES // 10]
    for rel, _ in gone:
        world.dagshub.delete(rel)
    run = world.verify()
    assert run.code == 1, run.stderr
    assert run.missing_paths("dagshub") == {path for _, path in gone}
    assert run.missing_paths("backblaze") == set()
    assert len(run.report["missing"]) == len(gone)  # type: ignore[index]
    dagshub = run.remote("dagshub")
    assert (dagshub["state"], dagshub["objects_missing"]) == ("missing", len(gone))
    assert dagshub["bytes_missing"] == sum(
        (world.project.root / ".dvc" / "cache" / rel).stat().st_size for rel, _ in gone
    )
    images = next(o for o in run.report["outputs"] if o["path"] == "data/images")  # type: ignore[index]
    assert images["missing"] == {"dagshub": len(gone)}
    assert images["is_dir"] and images["files"] == FILES
    assert "dvc push -r dagshub data/images.dvc" in (run.markdown or "")
    # Existence is asked with HEAD, never by downloading a body (the one GET is the probe-free
    # manifest read, which the local cache answers here).
    assert world.dagshub.count("GET") == 0
    assert world.dagshub.count("HEAD") >= FILES


def test_wrong_dagshub_token_is_auth_not_missing(world: World) -> None:
    run = world.verify(env={"DAGSHUB_TOKEN": "not-the-token"})
    assert run.code == 3, run.stderr
    dagshub = run.remote("dagshub")
    assert dagshub["state"] == "auth"
    assert dagshub["objects_missing"] is None
    assert run.missing_paths("dagshub") == set()
    assert "credentials refused" in dagshub["message"]


def test_b2_download_cap_is_cap_exceeded(world: World) -> None:
    world.s3.set_fault(Fault("b2_cap"))
    run = world.verify()
    assert run.code == 3, run.stderr
    backblaze = run.remote("backblaze")
    assert backblaze["state"] == "cap-exceeded"
    assert run.missing_paths("backblaze") == set()
    assert "cap" in backblaze["message"]


def test_remote_on_dead_port_is_unreachable_within_10s(world: World, dead_url: str) -> None:
    world.project.add_remote(
        "backblaze", f"s3://{world.bucket}/{PREFIX}", default=True, endpointurl=dead_url
    )
    started = time.monotonic()
    run = world.verify()
    elapsed = time.monotonic() - started
    assert run.code == 3, run.stderr
    assert run.remote("backblaze")["state"] == "unreachable"
    assert run.missing_paths("backblaze") == set()
    assert elapsed < 10 + 3, f"took {elapsed:.1f} s"  # + interpreter and DVC start-up


def test_range_reports_only_what_the_pr_adds(world: World) -> None:
    project = world.project
    base = project.git("rev-parse", "HEAD")
    project.git("checkout", "-q", "-b", "feature")
    project.write_file("data/labels.csv", 5_000, seed=9)
    project.dvc_add("data/labels.csv")
    head = project.commit("Add labels")
    project.seed_dir(world.dagshub.root, "data/labels.csv.dvc")  # pushed to dagshub only
    # Data of the base commit that is missing too must not be blamed on the PR.
    world.dagshub.delete(_image_objects(world)[0][0])
    run = world.verify("--range", f"{base}..{head}")
    assert run.code == 1, run.stderr
    assert [o["path"] for o in run.report["outputs"]] == ["data/labels.csv"]  # type: ignore[index]
    assert run.missing_paths("backblaze") == {"data/labels.csv"}
    assert run.missing_paths("dagshub") == set()


def test_rev_checks_what_that_commit_references(world: World) -> None:
    first = world.project.git("rev-parse", "HEAD")
    world.project.write_file("data/model.bin", 1_000, seed=5)
    world.project.dvc_add("data/model.bin")
    world.project.commit("New model, never pushed")
    assert world.verify("--rev", first).code == 0
    newer = world.verify("--rev", "HEAD")
    assert newer.code == 1
    assert newer.missing_paths("dagshub") == {"data/model.bin"}


def test_secrets_never_leak_and_config_local_is_restored(world: World, dead_url: str) -> None:
    project = world.project
    secret_minio = "minio-secret-77aa19"
    project.add_remote("minio", f"s3://{world.bucket}/{PREFIX}", endpointurl=world.s3.base_url)
    other = DagsHubRemoteServer(
        project.root.parent / "other-store", user=TOKEN, password=TOKEN
    ).start()
    try:
        project.add_remote("mirror", other.url)  # a host not on DAGSHUB_HOSTS
        local = project.root / ".dvc" / "config.local"
        local.write_text("[core]\n    autostage = false\n")
        before = local.read_bytes()
        env = {
            "DVC_REMOTE_MINIO_SECRET_ACCESS_KEY": secret_minio,
            "DVC_REMOTE_MINIO_ACCESS_KEY_ID": "id-x",
        }
        run = world.verify("-r", "backblaze,dagshub,minio,mirror", env=env)
        secrets = [TOKEN, B2_KEY_ID, B2_KEY, secret_minio]
        assert run.report is not None, run.stderr
        assert run.remote("dagshub")["state"] == "ok"
        assert run.remote("mirror")["state"] == "auth"  # it got nothing, so it refused us
        for secret in secrets:
            assert secret not in run.everything
        assert project.files_containing(secrets) == []
        assert local.read_bytes() == before
        assert other.requests and not any(r.had_credentials for r in other.requests)
        assert "mirror" in run.stdout + run.stderr and "DAGSHUB_HOSTS" in run.stdout + run.stderr
    finally:
        other.stop()


def test_config_local_restored_after_sigterm(world: World) -> None:
    world.s3.set_fault(Fault("delay", seconds=20))
    local = world.project.root / ".dvc" / "config.local"
    assert not local.exists()
    command = [sys.executable, "-m", "dvc_multiremote", "verify"]
    proc = subprocess.Popen(
        command,
        cwd=world.project.root,
        env=cli_env(world.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not local.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local.exists(), "config.local was never written"
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert not local.exists()
    for secret in (TOKEN, B2_KEY_ID, B2_KEY):
        assert secret not in out + err
    assert world.project.files_containing([TOKEN, B2_KEY_ID, B2_KEY]) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["-r", "nowhere"],
            "Unknown remote 'nowhere' in --remotes; the configured remotes are: backblaze, dagshub.",
        ),
        (["--range", "main"], "--range must look like BASE..HEAD"),
        (["--rev", "no-such-rev"], "--rev names 'no-such-rev', which is not a commit"),
        (["-j", "0"], "-j/--jobs: must be a whole number of at least 1, got '0'"),
        (["--frobnicate"], "Unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(world: World, args: list[str], says: str) -> None:
    run = world.verify(*args)
    assert run.code == 2, run.stderr
    assert says in run.stderr
    assert run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr


def test_not_a_dvc_repo_is_exit_2(tmp_path: Path) -> None:
    project = Project(tmp_path)
    run = project.run("verify", "--repo", str(tmp_path))
    assert run.code == 2
    assert "is not in a DVC project" in run.stderr


def test_json_report_shape(world: World) -> None:
    world.dagshub.delete(_image_objects(world)[1][0])
    run = world.verify()
    report = run.report
    assert report is not None
    assert {"command", "ok", "exit_code", "remotes", "outputs", "missing", "totals"} <= set(report)
    assert report["command"] == "verify" and report["exit_code"] == 1 and report["ok"] is False
    for remote in report["remotes"]:
        assert {
            "name",
            "url",
            "state",
            "message",
            "objects_present",
            "objects_missing",
            "bytes_missing",
        } <= set(remote)
        assert TOKEN not in remote["url"]
    for out in report["outputs"]:
        assert {"path", "dvc_file", "md5", "is_dir", "files", "missing"} <= set(out)
    for item in report["missing"]:
        assert {"md5", "path", "size", "missing_on"} <= set(item)
    json.dumps(report)


def test_directory_whose_manifest_nobody_has_is_missing_everywhere(world: World) -> None:
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    (world.project.root / ".dvc" / "cache" / manifest).unlink()
    world.dagshub.delete(manifest)
    client = s3_client(world.moto.endpoint_url)
    client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{manifest}")
    run = world.verify()
    assert run.code == 1, run.stderr
    images = next(o for o in run.report["outputs"] if o["path"] == "data/images")  # type: ignore[index]
    assert "manifest" in images["reason"]
    assert sorted(images["manifest_missing"]) == ["backblaze", "dagshub"]
    assert run.missing_paths("dagshub") == {"data/images"}
    assert "1 output(s) have no manifest anywhere" in run.stdout


def test_all_commits_sees_data_only_an_old_commit_references(world: World) -> None:
    world.project.write_file("data/old.bin", 2_000, seed=11)
    world.project.dvc_add("data/old.bin")
    world.project.commit("Old data, never pushed")
    world.project.git("rm", "-q", "data/old.bin.dvc")
    world.project.commit("Drop it")
    assert world.verify().code == 0
    run = world.verify("--all-commits")
    assert run.code == 1, run.stderr
    assert run.missing_paths("backblaze") == {"data/old.bin"}


def test_http_remote_answering_503_slowdown_is_retried_not_reported_missing(
    world: World, fault_proxy: MakeProxy
) -> None:
    proxy = fault_proxy(world.dagshub.base_url)
    proxy.set_fault(Fault("slowdown", rate=0.2, retry_after=0, seed=5))
    world.project.add_remote("dagshub", proxy.base_url + "/owner/repo.dvc")
    run = world.verify(env={"DAGSHUB_HOSTS": proxy.host})
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("dagshub")["objects_missing"] == 0
    assert any(r.status == 503 for r in proxy.requests)


def test_dagshub_checks_run_64_at_once_and_halve_when_told_to_slow_down(
    world: World, fault_proxy: MakeProxy
) -> None:
    # Over a real network every HEAD waits a round trip, and DagsHub cannot list: how many are
    # in flight sets the pace (`dvc status -c` keeps 4 x CPU count).
    project = world.project
    project.add_dir("data/more", 400)
    project.seed_dir(world.dagshub.root, "data/more.dvc")
    proxy = fault_proxy(world.dagshub.base_url)
    world.project.add_remote("dagshub", proxy.base_url + "/owner/repo.dvc")
    env = {"DAGSHUB_HOSTS": proxy.host}
    proxy.set_fault(Fault("delay", seconds=0.05))
    for args, at_least, at_most in (((), 40, 64), (("-j", "8"), 1, 8)):
        proxy.clear_log()
        run = world.verify("-r", "dagshub", *args, env=env)
        assert run.code == 0, run.stderr + run.stdout
        assert run.remote("dagshub")["objects_present"] > 400
        assert at_least <= proxy.max_in_flight <= at_most, (args, proxy.max_in_flight)

    # A 503 with Retry-After (DagsHub's "slow down"): half as many in flight from then on.
    proxy.add_fault(Fault("slowdown", rate=0.05, retry_after=0, seed=3))
    proxy.clear_log()
    run = world.verify("-r", "dagshub", "-v", env=env)
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("dagshub")["objects_missing"] == 0
    records = proxy.requests
    told = min(r.arrived for r in records if r.status == 503)
    later = sorted(r.in_flight for r in records if r.arrived > told + 0.5)
    # 90% of them, +2: the proxy counts a request out after answering it, so a retry (or the
    # next HEAD) of the same worker may come in before it has.
    assert later and later[len(later) * 9 // 10] <= 32 + 2, later[-20:]
    assert "asked to slow down" in run.stderr


def test_a_manifest_whose_bytes_are_not_its_address_is_read_from_the_next_remote(
    world: World,
) -> None:
    # A .dir's md5 is its address: a tampered or truncated copy on B2 (here listing 30 of the 40
    # files) must not shrink the directory when a fresh runner has no manifest in its cache.
    manifest = next(rel for rel in world.project.objects("data/images.dvc") if rel.endswith(".dir"))
    entries = json.loads(
        world.project.cache_path(manifest.split("/", 2)[2].replace("/", "")).read_text()
    )
    s3_client(world.moto.endpoint_url).put_object(
        Bucket=world.bucket, Key=f"{PREFIX}/{manifest}", Body=json.dumps(entries[:30]).encode()
    )
    run = world.run_in(world.clone(), "verify")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    assert run.report["totals"]["objects"] == FILES + 2
    assert run.remote("dagshub")["requests"]["GET"] >= 1  # the manifest came from DagsHub


def test_remote_that_accepts_but_never_answers_is_unreachable_in_bounded_time(world: World) -> None:
    world.s3.set_fault(Fault("hang", seconds=60))
    started = time.monotonic()
    run = world.verify()
    elapsed = time.monotonic() - started
    assert run.code == 3, run.stderr + run.stdout
    backblaze = run.remote("backblaze")
    assert backblaze["state"] == "unreachable"
    assert backblaze["objects_missing"] is None
    assert run.remote("dagshub")["state"] == "ok"
    assert elapsed < 20, f"took {elapsed:.1f} s"


def test_verify_says_how_much_b2_stores_against_its_free_tier(world: World) -> None:
    client = s3_client(world.moto.endpoint_url)
    # Something else under the DVC prefix (an object of another project, say) counts as stored.
    client.put_object(Bucket=world.bucket, Key=f"{PREFIX}/files/md5/ff/{'f' * 30}", Body=b"x" * 700)
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=world.bucket, Prefix=f"{PREFIX}/files/md5/"
    )
    listed = sum(item["Size"] for page in pages for item in page.get("Contents", []))
    referenced = sum(
        (world.project.root / ".dvc" / "cache" / rel).stat().st_size
        for rel in world.project.objects("data/images.dvc", "data/model.bin.dvc")
    )
    run = world.verify()
    assert run.code == 0, run.stdout + run.stderr
    backblaze = run.remote("backblaze")
    assert backblaze["bytes_stored"] == listed
    assert backblaze["bytes_referenced"] == referenced == listed - 700
    assert run.remote("dagshub")["bytes_stored"] is None  # HTTP cannot list
    assert "backblaze: " in run.stdout and " stored, " in run.stdout
    assert run.markdown is not None and "stored" in run.markdown

    limit = listed * 100 // 95  # the remote holds 95% of it
    full = world.verify("--storage-limit", f"backblaze={limit}B")
    assert full.code == 0
    assert full.report is not None
    assert any("backblaze stores" in w and "95%" in w for w in full.report["warnings"])
    roomy = world.verify("--storage-limit", f"backblaze={listed * 2}B")
    assert roomy.report is not None and not any("stores" in w for w in roomy.report["warnings"])
    wrong = world.verify("--storage-limit", "nowhere=10GB")
    assert wrong.code == 2 and "--storage-limit" in wrong.stderr and "'nowhere'" in wrong.stderr
