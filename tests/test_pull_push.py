"""`pull` with per-object fallback and `push` to every remote, against real servers on loopback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from projects import B2_KEY, B2_KEY_ID, FILES, PREFIX, TOKEN, Project, World, cli_env, dvc_env
from servers.faults import Fault
from servers.moto_s3 import s3_client

ALL = FILES + 2  # the files of data/images, its manifest, data/model.bin


def _workspace_complete(project: Project) -> bool:
    images = project.root / "data" / "images"
    return (project.root / "data" / "model.bin").is_file() and len(
        list(images.glob("*.bin"))
    ) == FILES


def _objects_got(log: list, prefix: str) -> list[str]:  # type: ignore[type-arg]
    """Object paths a server answered 200 to a GET for (not probes, not 404s)."""
    return [
        r.path.split(prefix, 1)[1]
        for r in log
        if r.method == "GET" and r.status == 200 and prefix in r.path
    ]


def test_primary_on_dead_port_pulls_everything_from_the_secondary(
    world: World, dead_url: str
) -> None:
    direct = world.clone("direct")
    started = time.monotonic()
    assert world.run_in(direct, "pull", "-r", "dagshub").code == 0
    direct_seconds = time.monotonic() - started

    clone = world.clone_with_b2_dead(dead_url)
    started = time.monotonic()
    run = world.run_in(clone, "pull")
    fallback_seconds = time.monotonic() - started
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None
    assert run.report["remotes_used"] == ["dagshub"]
    assert run.remote("backblaze")["state"] == "unreachable"
    assert run.remote("dagshub")["objects_served"] == ALL
    assert any("Fell back" in w for w in run.report["warnings"])
    assert _workspace_complete(clone)
    assert fallback_seconds - direct_seconds < 5, (fallback_seconds, direct_seconds)


def test_b2_cap_midway_each_object_downloaded_exactly_once(world: World) -> None:
    capped_after = 10
    world.s3.set_fault(Fault("b2_cap", after=capped_after))
    clone = world.clone()
    run = world.run_in(clone, "pull", "-j", "4")
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "cap-exceeded"
    assert run.remote("backblaze")["objects_served"] == capped_after
    assert run.remote("dagshub")["objects_served"] == ALL - capped_after
    from_b2 = _objects_got(world.s3.requests, f"{PREFIX}/")
    from_dagshub = _objects_got(world.dagshub.requests, "repo.dvc/")
    assert len(from_b2) == capped_after
    assert len(from_b2) + len(from_dagshub) == ALL
    assert len(set(from_b2) | set(from_dagshub)) == ALL  # nothing downloaded twice
    assert _workspace_complete(clone)


def test_objects_split_across_remotes_all_arrive(world: World) -> None:
    objects = sorted(world.project.objects("data/images.dvc", "data/model.bin.dvc"))
    client = s3_client(world.moto.endpoint_url)
    for number, rel in enumerate(objects):
        if number % 2:
            client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{rel}")
        else:
            world.dagshub.delete(rel)
    clone = world.clone()
    run = world.run_in(clone, "pull")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None and run.report["remotes_used"] == ["backblaze", "dagshub"]
    assert _workspace_complete(clone)


def test_object_on_no_remote_is_reported_and_the_rest_checked_out(world: World) -> None:
    gone_rel, gone_path = next(
        (rel, path)
        for rel, path in sorted(world.project.objects("data/images.dvc").items())
        if not rel.endswith(".dir")
    )
    s3_client(world.moto.endpoint_url).delete_object(
        Bucket=world.bucket, Key=f"{PREFIX}/{gone_rel}"
    )
    world.dagshub.delete(gone_rel)
    clone = world.clone()
    run = world.run_in(clone, "pull")
    assert run.code == 1, run.stderr + run.stdout
    assert run.report is not None
    assert [m["path"] for m in run.report["missing"]] == [gone_path]
    assert (clone.root / "data" / "model.bin").is_file()
    assert gone_path in run.stdout


def test_wrong_token_on_secondary_does_not_matter_when_primary_serves_all(world: World) -> None:
    clone = world.clone()
    run = world.run_in(clone, "pull", env={"DAGSHUB_TOKEN": "wrong"})
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("dagshub")["state"] != "auth"
    assert world.dagshub.requests == []
    # ...but when it is needed, its refusal is named as such.
    world.s3.set_fault(Fault("unauthorized"))
    again = world.run_in(world.clone("again"), "pull", env={"DAGSHUB_TOKEN": "wrong"})
    assert again.code == 3, again.stderr + again.stdout
    assert again.remote("dagshub")["state"] == "auth"
    assert again.remote("backblaze")["state"] == "auth"


def test_primary_slowdown_on_a_fifth_of_requests_still_completes(world: World) -> None:
    world.s3.set_fault(Fault("slowdown", rate=0.2, retry_after=0, seed=3))
    clone = world.clone()
    run = world.run_in(clone, "pull", "-r", "backblaze")
    assert run.code == 0, run.stderr + run.stdout
    assert _workspace_complete(clone)
    assert any(r.status == 503 for r in world.s3.requests)


def test_push_with_one_remote_down_then_up(world: World, dead_url: str) -> None:
    project = world.project
    project.add_dir("data/more", 12, seed=21)
    new = set(project.objects("data/more.dvc"))
    good_endpoint = world.s3.base_url
    project.add_remote(
        "backblaze", f"s3://{world.bucket}/{PREFIX}", default=True, endpointurl=dead_url
    )
    run = world.run("push")
    assert run.code == 3, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "unreachable"
    assert run.remote("dagshub")["objects_pushed"] == len(new)
    assert new <= set(world.dagshub.object_paths())

    project.add_remote(
        "backblaze", f"s3://{world.bucket}/{PREFIX}", default=True, endpointurl=good_endpoint
    )
    again = world.run("push")
    assert again.code == 0, again.stderr + again.stdout
    assert again.remote("backblaze")["objects_pushed"] == len(new)
    assert again.remote("dagshub")["objects_pushed"] == 0
    assert {f"{PREFIX}/{rel}" for rel in new} <= set(world.s3_keys())
    assert world.verify().code == 0


def test_after_push_the_real_dvc_cli_pulls_from_each_remote(world: World) -> None:
    project = world.project
    project.write_dir("data/fresh", 15, seed=33)
    project.write_file("data/fresh.csv", 70_000, seed=34)
    project.dvc_add("data/fresh", "data/fresh.csv")
    project.commit("Fresh data")
    assert world.run("push").code == 0
    for remote in ("backblaze", "dagshub"):
        clone = world.clone(f"cli-{remote}")
        local = clone.root / ".dvc" / "config.local"
        local.write_text(
            f"['remote \"dagshub\"']\n    auth = basic\n    user = {TOKEN}\n    password = {TOKEN}\n"
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "dvc",
                "pull",
                "-r",
                remote,
                "data/fresh.dvc",
                "data/fresh.csv.dvc",
            ],
            cwd=clone.root,
            env=dvc_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(list((clone.root / "data" / "fresh").iterdir())) == 15
        assert (clone.root / "data" / "fresh.csv").stat().st_size == 70_000


def test_push_sends_every_file_to_dagshub_with_its_length(world: World) -> None:
    """Each file goes up as one request that says its length (a server that takes no chunked
    body takes them), small ones and one of 9 MiB alike, and both remotes end up with every
    byte."""
    project = world.project
    project.write_dir("data/fresh", 6, seed=41)
    project.write_file("data/large.bin", 9 * 2**20, seed=42)
    project.dvc_add("data/fresh", "data/large.bin")
    project.commit("Fresh data and a large file")
    world.dagshub.clear_log()
    run = world.run("push")
    assert run.code == 0, run.stderr + run.stdout
    new = set(project.objects("data/fresh.dvc")) | set(project.objects("data/large.bin.dvc"))
    uploads = [r for r in world.dagshub.requests if r.method in ("POST", "PUT")]
    assert len(uploads) == len(new)
    assert max(r.bytes_in for r in uploads) == 9 * 2**20
    for record in uploads:
        headers = {name.lower(): value for name, value in record.headers.items()}
        assert headers.get("content-length") == str(record.bytes_in)
        assert "transfer-encoding" not in headers
    assert new <= set(world.dagshub.object_paths())
    assert {f"{PREFIX}/{rel}" for rel in new} <= set(world.s3_keys())
    assert world.verify().code == 0


def test_push_to_a_dagshub_that_sends_uploads_to_its_sign_in_page_stores_nothing_and_says_so(
    world: World,
) -> None:
    """A 302 to a sign-in page: aiohttp re-sends a redirected POST as a GET, which the page
    answers 200. Nothing was stored, so the remote's uploads are refused, not counted."""
    project = world.project
    project.write_dir("data/fresh", 8, seed=43)
    project.dvc_add("data/fresh")
    project.commit("Fresh data")
    new = set(project.objects("data/fresh.dvc"))
    world.dagshub.redirect_uploads = (302, "/login")
    run = world.run("push", "-j", "2")
    assert run.code == 3, run.stderr + run.stdout
    dagshub = run.remote("dagshub")
    assert dagshub["state"] == "error"
    assert dagshub["message"].startswith("refused uploads: HTTP 302"), dagshub["message"]
    assert "nothing was stored" in run.stdout
    said = run.stdout + run.stderr + repr(run.report) + (run.markdown or "")
    assert TOKEN not in said  # the address named carries no credentials
    assert not new & set(world.dagshub.object_paths())
    assert run.remote("backblaze")["state"] == "ok"
    world.dagshub.redirect_uploads = None
    assert world.run("push").code == 0
    assert new <= set(world.dagshub.object_paths())


def test_push_follows_a_dagshub_that_moved_with_a_307_and_sends_every_byte_again(
    world: World,
) -> None:
    """A 307 keeps the method: each upload, a 9 MiB one streamed from disk included, is sent
    again whole to where the repository moved, with its credentials (same origin)."""
    project = world.project
    project.write_dir("data/fresh", 4, seed=44)
    project.write_file("data/large.bin", 9 * 2**20, seed=45)
    project.dvc_add("data/fresh", "data/large.bin")
    project.commit("Fresh data and a large file")
    new = set(project.objects("data/fresh.dvc")) | set(project.objects("data/large.bin.dvc"))
    world.dagshub.redirect_uploads = (307, "/moved")
    world.dagshub.clear_log()
    run = world.run("push")
    assert run.code == 0, run.stderr + run.stdout
    moved = [r for r in world.dagshub.requests if r.path.startswith("/moved/")]
    assert len(moved) == len(new)
    assert all(r.status in (200, 201) and r.authorized for r in moved)
    assert max(r.bytes_in for r in moved) == 9 * 2**20
    assert new <= set(world.dagshub.object_paths())
    world.dagshub.redirect_uploads = None
    assert world.verify().code == 0


def test_push_interrupted_starts_nothing_new_leaves_no_secrets_and_resumes(
    world: World,
) -> None:
    """SIGTERM (a cancelled workflow) mid-push: the uploads in flight end, no other starts,
    the credentials file is gone, and the next push completes."""
    project = world.project
    project.write_dir("data/many", 40, seed=51)
    project.dvc_add("data/many")
    project.commit("Many files")
    new = set(project.objects("data/many.dvc"))
    before = set(world.dagshub.object_paths())
    world.dagshub.latency = 0.2
    world.s3.set_fault(Fault("delay", seconds=0.2, only=("PUT",)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc_multiremote", "push", "-j", "2"],
        cwd=project.root,
        env=cli_env(world.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(set(world.dagshub.object_paths()) - before) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    at_signal = len(set(world.dagshub.object_paths()) - before)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    after = len(set(world.dagshub.object_paths()) - before)
    assert after - at_signal <= 2 + 2  # the two in flight, and two more that may have begun
    assert after < len(new)
    assert not (project.root / ".dvc" / "config.local").exists()
    world.dagshub.latency = 0.0
    world.s3.clear_faults()
    again = world.run("push")
    assert again.code == 0, again.stderr + again.stdout
    assert new <= set(world.dagshub.object_paths())
    assert world.verify().code == 0


def test_push_lists_what_the_cache_lacks(world: World) -> None:
    clone = world.clone()
    run = world.run_in(clone, "push")
    assert run.code == 1, run.stderr + run.stdout
    assert run.report is not None
    assert {m["path"] for m in run.report["not_in_cache"]} == {"data/images", "data/model.bin"}


def test_pull_and_push_keep_secrets_out_of_everything(world: World) -> None:
    clone = world.clone()
    world.s3.set_fault(Fault("b2_cap", after=5))
    runs = [world.run_in(clone, "pull", "-v"), world.run_in(clone, "push", "-v")]
    secrets = [TOKEN, B2_KEY_ID, B2_KEY]
    for run in runs:
        assert run.report is not None, run.stderr
        for secret in secrets:
            assert secret not in run.everything
    assert clone.files_containing(secrets) == []
    assert not (clone.root / ".dvc" / "config.local").exists()
    # The runs got their secrets only from the scenario, never from the parent environment.
    assert not any(key.startswith(("DAGSHUB_", "B2_", "DVC_REMOTE_")) for key in cli_env())


def test_primary_that_hangs_is_dropped_and_the_secondary_serves(world: World) -> None:
    world.s3.set_fault(Fault("hang", seconds=60))
    clone = world.clone()
    started = time.monotonic()
    run = world.run_in(clone, "pull")
    elapsed = time.monotonic() - started
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "unreachable"
    assert run.report is not None and run.report["remotes_used"] == ["dagshub"]
    assert _workspace_complete(clone)
    assert elapsed < 30, f"took {elapsed:.1f} s"


def test_primary_that_goes_silent_midway_is_dropped_after_the_deadline(world: World) -> None:
    world.s3.set_fault(Fault("hang", after=5, only=("GET",), seconds=60))
    clone = world.clone()
    started = time.monotonic()
    run = world.run_in(clone, "pull", "-j", "2", env={"DVC_MULTIREMOTE_DEADLINE": "3"})
    elapsed = time.monotonic() - started
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "unreachable"
    assert run.remote("backblaze")["objects_served"] == 5
    assert run.remote("dagshub")["objects_served"] == ALL - 5
    assert _workspace_complete(clone)
    assert elapsed < 30, f"took {elapsed:.1f} s"


def test_a_primary_is_listed_only_once_it_turns_out_to_lack_objects(world: World) -> None:
    project = world.project
    project.add_dir("data/more", 150)
    project.seed_dir(world.dagshub.root, "data/more.dvc")
    client = s3_client(world.moto.endpoint_url)

    # On both remotes: pulled straight from the primary, no listing at all.
    project.seed_s3(client, world.bucket, PREFIX, "data/more.dvc")
    world.s3.clear_log()
    run = world.run_in(world.clone("everything-on-b2"), "pull")
    assert run.code == 0, run.stderr + run.stdout
    assert run.report is not None and run.report["remotes_used"] == ["backblaze"]
    assert not [r for r in world.s3.requests if r.kind == "LIST"]

    # The primary lacks the new files: after a few misses it is listed once, and the rest of
    # what it lacks is not asked of it.
    more = [rel for rel in project.objects("data/more.dvc") if not rel.endswith(".dir")]
    client.delete_objects(
        Bucket=world.bucket,
        Delete={"Objects": [{"Key": f"{PREFIX}/{rel}"} for rel in more]},
    )
    world.s3.clear_log()
    run = world.run_in(world.clone("fallback"), "pull", "-j", "4")
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("dagshub")["objects_served"] == len(more)
    misses = [r for r in world.s3.requests if r.kind == "GET" and r.status == 404]
    assert len(misses) < 40, len(misses)  # not 150
    assert 1 <= len([r for r in world.s3.requests if r.kind == "LIST"]) <= 4


def test_pull_keeps_as_many_downloads_in_flight_as_jobs_allows(world: World) -> None:
    # Over a real network each GET waits a round trip: botocore's default pool of 10
    # connections would cap a pull at 10 objects per round trip, whatever --jobs says.
    project = world.project
    project.add_dir("data/more", 150)
    project.seed_s3(s3_client(world.moto.endpoint_url), world.bucket, PREFIX, "data/more.dvc")
    world.s3.set_fault(Fault("delay", seconds=0.1, only=("GET",)))
    for jobs, at_least, at_most in (("32", 20, 32), ("4", 1, 4)):
        world.s3.clear_log()
        clone = world.clone(f"jobs-{jobs}")
        run = world.run_in(clone, "pull", "-j", jobs)
        assert run.code == 0, run.stderr + run.stdout
        assert run.remote("backblaze")["objects_served"] > 150
        assert at_least <= world.s3.max_in_flight <= at_most, (jobs, world.s3.max_in_flight)
        assert _workspace_complete(clone)
        assert len(list((clone.root / "data" / "more").iterdir())) == 150


def test_a_slow_download_that_keeps_moving_is_not_cut_off(world: World) -> None:
    # data/model.bin (300 KB) arrives 16 KB every 0.3 s: ~5.5 s, well past a 2 s stall deadline.
    world.s3.set_fault(Fault("trickle", seconds=0.3, only=("GET",)))
    clone = world.clone()
    run = world.run_in(clone, "pull", env={"DVC_MULTIREMOTE_DEADLINE": "2"})
    assert run.code == 0, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "ok"
    assert run.remote("backblaze")["objects_served"] == ALL
    assert _workspace_complete(clone)


def _object_gets(world: World) -> list[str]:
    """Objects either remote served a body for (probes of absent keys are 404s, not counted)."""
    s3 = [
        r.path.split(f"{PREFIX}/", 1)[1]
        for r in world.s3.requests
        if r.kind == "GET" and 200 <= r.status < 300 and f"{PREFIX}/files/" in r.path
    ]
    return s3 + _objects_got(world.dagshub.requests, "repo.dvc/")


def test_a_warm_cache_is_not_downloaded_again_and_one_changed_file_comes_alone(
    world: World,
) -> None:
    """What actions/cache gives a training job: `.dvc/cache` restored from the last run."""
    runner = world.clone("runner")
    assert world.run_in(runner, "pull").code == 0
    world.s3.clear_log()
    world.dagshub.clear_log()
    warm = world.run_in(runner, "pull")
    assert warm.code == 0, warm.stdout + warm.stderr
    assert _object_gets(world) == []
    assert [r for r in world.s3.requests if r.kind == "GET"] == []
    assert [r for r in world.dagshub.requests if r.method == "GET"] == []

    world.project.write_file("data/model.bin", 300_000, seed=99)
    world.project.dvc_add("data/model.bin")
    world.project.commit("A new model")
    assert world.run("push").code == 0
    runner.git("pull", "-q")
    world.s3.clear_log()
    world.dagshub.clear_log()
    changed = world.run_in(runner, "pull")
    assert changed.code == 0, changed.stdout + changed.stderr
    model = next(iter(world.project.objects("data/model.bin.dvc")))
    assert _object_gets(world) == [model]
    assert (runner.root / "data" / "model.bin").read_bytes() == (
        world.project.root / "data" / "model.bin"
    ).read_bytes()
