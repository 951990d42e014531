"""DVC's whole output model, as `dvc push`/`pull`/`fetch` 3.67 apply it: outputs pinned with
``remote:``, ``push: false`` stage outputs, imports from another repository, cloud-versioned
remotes, ``b2://`` URLs and local remotes whose directory does not exist yet."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import yaml

from projects import B2_KEY, B2_KEY_ID, PREFIX, TOKEN, Project, Run, World, cli_env
from servers.moto_s3 import s3_client

if TYPE_CHECKING:
    from pathlib import Path

SECRETS = [TOKEN, B2_KEY, B2_KEY_ID]


def _no_secret_left(project: Project, *runs: Run) -> None:
    """No secret value in any output or report, nor in any file the runs left in the project."""
    for run in runs:
        assert not [secret for secret in SECRETS if secret in run.everything]
    assert project.files_containing(SECRETS) == []


def _pinned_dir(project: Project, rel: str, files: int, remote: str, *, seed: int) -> None:
    """A new directory of ``files`` files, ``dvc add``ed with ``remote: REMOTE``, committed."""
    project.write_dir(rel, files, seed=seed)
    project.dvc_add(rel)
    _pin(project, f"{rel}.dvc", remote)
    project.commit(f"{rel}, pinned to {remote}")


def _pin(project: Project, dvc_file: str, remote: str) -> None:
    """Give an output ``remote: NAME`` in its ``.dvc`` file, as `dvc add --remote` does."""
    path = project.root / dvc_file
    data = yaml.safe_load(path.read_text())
    data["outs"][0]["remote"] = remote
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _s3_holds(world: World, project: Project, dvc_file: str) -> list[str]:
    keys = set(world.s3_keys())
    return [rel for rel in project.objects(dvc_file) if f"{PREFIX}/{rel}" in keys]


def _dagshub_holds(world: World, project: Project, dvc_file: str) -> list[str]:
    stored = set(world.dagshub.object_paths())
    return [rel for rel in project.objects(dvc_file) if rel in stored]


# --- remote: NAME --------------------------------------------------------------------------
def test_an_output_pinned_to_dagshub_is_checked_there_only_and_never_copied_to_b2(
    world: World,
) -> None:
    project = world.project
    _pinned_dir(project, "data/pinned", 6, "dagshub", seed=11)
    project.seed_dir(world.dagshub.root, "data/pinned.dvc")

    run = world.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    pinned = next(o for o in run.report["outputs"] if o["path"] == "data/pinned")
    assert pinned["pinned_to"] == "dagshub" and pinned["missing"] == {}
    assert run.remote("backblaze")["objects_missing"] == 0

    runner = world.clone("runner")
    sync = world.run_in(runner, "sync")
    assert sync.code == 0, sync.stdout + sync.stderr
    assert sync.report is not None and sync.report["pairs"] == []
    assert _s3_holds(world, project, "data/pinned.dvc") == []

    _pinned_dir(project, "data/pinned-too", 4, "dagshub", seed=12)
    push = world.run("push")
    assert push.code == 0, push.stdout + push.stderr
    assert len(_dagshub_holds(world, project, "data/pinned-too.dvc")) == 5  # 4 files + manifest
    assert _s3_holds(world, project, "data/pinned-too.dvc") == []
    _no_secret_left(project, run, push)
    _no_secret_left(runner, sync)


def test_an_output_pinned_to_a_remote_the_run_leaves_out_is_said_once(world: World) -> None:
    project = world.project
    _pinned_dir(project, "data/pinned", 3, "dagshub", seed=13)
    run = world.verify("-r", "backblaze")
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    assert [a["path"] for a in run.report["set_aside"]] == ["data/pinned"]
    assert sum("pinned to remote 'dagshub'" in w for w in run.report["warnings"]) == 1


# --- push: false ---------------------------------------------------------------------------
def test_a_push_false_output_is_expected_nowhere_and_never_uploaded(world: World) -> None:
    project = world.project
    (project.root / "dvc.yaml").write_text(
        "stages:\n"
        "  secret:\n"
        f"    cmd: {sys.executable} -c \"open('local.bin', 'wb').write(b'x' * 5000)\"\n"
        "    outs:\n"
        "      - local.bin:\n"
        "          push: false\n"
    )
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-q"], cwd=project.root, env=cli_env(), check=True
    )
    project.commit("A stage whose output stays here")
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    md5 = lock["stages"]["secret"]["outs"][0]["md5"]

    run = world.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    assert [a["path"] for a in run.report["set_aside"]] == ["local.bin"]
    assert "push: false" in run.report["set_aside"][0]["why"]

    push = world.run("push")
    assert push.code == 0, push.stdout + push.stderr
    rel = f"files/md5/{md5[:2]}/{md5[2:]}"
    assert rel not in world.dagshub.object_paths()
    assert f"{PREFIX}/{rel}" not in world.s3_keys()
    _no_secret_left(project, run, push)


# --- imports -------------------------------------------------------------------------------
def test_an_imported_directory_is_not_owed_and_pull_gets_it_from_its_source(
    world: World, tmp_path: Path
) -> None:
    from dvc.repo import Repo

    source = Project.create(tmp_path / "source")
    source.write_dir("shared", 5, seed=21)
    source.dvc_add("shared")
    storage = tmp_path / "source-storage"
    source.add_remote("origin", str(storage), default=True)
    source.commit("Shared data")
    with Repo(str(source.root)) as repo:
        repo.push()

    project = world.project
    with Repo(str(project.root)) as repo:
        repo.imp(str(source.root), "shared", out=str(project.root / "data" / "imported"))
    project.commit("Import shared data")

    run = world.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    aside = {a["path"]: a["why"] for a in run.report["set_aside"]}
    assert "imported" in aside["data/imported"]

    clone = world.clone("fresh")
    pull = world.run_in(clone, "pull")
    assert pull.code == 0, pull.stdout + pull.stderr
    assert sorted(p.name for p in (clone.root / "data" / "imported").iterdir()) == [
        f"f{n:04d}.bin" for n in range(5)
    ]
    assert pull.report is not None
    assert (
        "fetched from its source"
        in {a["path"]: a["why"] for a in pull.report["set_aside"]}["data/imported"]
    )
    assert "data/imported" in pull.stdout
    _no_secret_left(clone, pull)
    _no_secret_left(project, run)


# --- remotes DVC's layout does not cover ----------------------------------------------------
def test_a_cloud_versioned_remote_is_a_usage_error_naming_it(world: World) -> None:
    world.project.add_remote("versioned", "s3://bucket/versioned", version_aware="true")
    run = world.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "'versioned'" in run.stderr and "version_aware" in run.stderr
    assert "--remotes backblaze,dagshub" in run.stderr
    assert world.verify("-r", "backblaze,dagshub").code == 0


def test_a_b2_url_is_a_usage_error_with_the_s3_fix(world: World) -> None:
    config = world.project.root / ".dvc" / "config"
    config.write_text(config.read_text() + "['remote \"b2\"']\n    url = b2://my-bucket/dvc\n")
    run = world.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "'b2'" in run.stderr and "b2://my-bucket/dvc" in run.stderr
    assert "s3://my-bucket/dvc" in run.stderr and "backblazeb2.com" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_push_creates_a_local_remote_that_does_not_exist_yet(world: World, tmp_path: Path) -> None:
    target = tmp_path / "not" / "there" / "yet"
    world.project.add_remote("archive", str(target))
    run = world.run("push", "-r", "archive")
    assert run.code == 0, run.stdout + run.stderr
    assert run.remote("archive")["objects_pushed"] == 42
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "-c", "-r", "archive"],
        cwd=world.project.root,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "in sync" in done.stdout, done.stdout + done.stderr
    _no_secret_left(world.project, run)


def test_a_pin_to_a_remote_the_project_does_not_have_is_a_usage_error(world: World) -> None:
    project = world.project
    _pinned_dir(project, "data/typo", 2, "backblazee", seed=14)
    for command in ("verify", "push", "pull"):
        run = world.run(command)
        assert run.code == 2, (command, run.stdout + run.stderr)
        assert "'backblazee'" in run.stderr and "data/typo.dvc" in run.stderr


def test_an_object_both_pinned_and_not_is_owed_by_every_remote(world: World) -> None:
    project = world.project
    source = project.root / "data" / "model.bin"
    (project.root / "data" / "copy.bin").write_bytes(source.read_bytes())  # the same object
    project.dvc_add("data/copy.bin")
    _pin(project, "data/copy.bin.dvc", "dagshub")
    project.commit("The model again, pinned to dagshub")
    model = next(iter(project.objects("data/model.bin.dvc")))
    world.dagshub.delete(model)
    client = s3_client(world.moto.endpoint_url)
    client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{model}")
    run = world.verify()
    assert run.code == 1, run.stdout + run.stderr
    assert run.report is not None
    # One object, named by the first output that references it; lacking on both remotes.
    lacking = [(m["md5"], sorted(m["missing_on"])) for m in run.report["missing"]]
    assert lacking == [(model.replace("files/md5/", "").replace("/", ""), ["backblaze", "dagshub"])]


def test_a_b2_url_with_keys_in_it_never_shows_them(world: World) -> None:
    config = world.project.root / ".dvc" / "config"
    config.write_text(
        config.read_text() + "['remote \"b2\"']\n    url = b2://key-id:sEcReT-kEy@my-bucket/dvc\n"
    )
    run = world.verify()
    assert run.code == 2
    assert "sEcReT-kEy" not in run.everything and "key-id" not in run.everything
    assert "s3://my-bucket/dvc" in run.stderr


def test_pull_takes_a_pinned_output_from_its_own_remote_first(world: World) -> None:
    project = world.project
    _pinned_dir(project, "data/pinned", 5, "dagshub", seed=15)
    project.seed_dir(world.dagshub.root, "data/pinned.dvc")
    project.seed_s3(s3_client(world.moto.endpoint_url), world.bucket, PREFIX, "data/pinned.dvc")
    pinned = set(project.objects("data/pinned.dvc"))
    world.s3.clear_log()
    clone = world.clone("fresh")
    run = world.run_in(clone, "pull")
    assert run.code == 0, run.stdout + run.stderr
    from_b2 = {r.path.split(f"{PREFIX}/", 1)[-1] for r in world.s3.requests if r.kind == "GET"}
    assert not pinned & from_b2  # backblaze (the default remote) was not asked for them
    assert len(list((clone.root / "data" / "pinned").iterdir())) == 5
    assert run.remote("dagshub")["objects_served"] == len(pinned)
