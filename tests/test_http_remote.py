"""HTTP remotes as real services behave: object GETs that redirect to a presigned-URL host, and
servers that refuse HEAD. Credentials go to the remote's own origin only."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from projects import FILES, TOKEN, Project, World
from servers.dagshub import DagsHubRemoteServer
from servers.link import LinkRelay

if TYPE_CHECKING:
    from collections.abc import Iterator

ALL = FILES + 2  # the files of data/images, its manifest, data/model.bin
# Another address on loopback: another host, as a presigned URL's. macOS routes 127.0.0.1 alone;
# there the blob host differs by port only, which is another origin all the same.
BLOB_HOST = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"


@pytest.fixture
def blob_host(world: World) -> Iterator[DagsHubRemoteServer]:
    """DagsHub's object GETs answer 307 to this host, which refuses any Authorization header."""
    blob = DagsHubRemoteServer(
        world.dagshub.root, require_auth=False, bind_host=BLOB_HOST, refuse_authorization=True
    ).start()
    world.dagshub.redirect_gets_to = blob.base_url
    yield blob
    blob.stop()


def _workspace_complete(project: Project, world: World) -> bool:
    images = sorted(p.name for p in (project.root / "data" / "images").glob("*.bin"))
    source = sorted(p.name for p in (world.project.root / "data" / "images").glob("*.bin"))
    model = project.root / "data" / "model.bin"
    return (
        len(images) == FILES
        and images == source
        and model.read_bytes() == (world.project.root / "data" / "model.bin").read_bytes()
    )


def _no_credentials_reached(blob: DagsHubRemoteServer) -> None:
    assert blob.requests, "the redirect was never followed"
    assert not [r for r in blob.requests if "Authorization" in r.headers]
    assert all(TOKEN not in str(r.headers) for r in blob.requests)
    assert all(r.status == 200 for r in blob.requests if r.method == "GET")


def test_pull_follows_redirects_without_sending_the_token_elsewhere(
    world: World, blob_host: DagsHubRemoteServer, dead_url: str
) -> None:
    clone = world.clone_with_b2_dead(dead_url)
    run = world.run_in(clone, "pull")
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    assert run.remote("dagshub")["objects_served"] == ALL
    assert _workspace_complete(clone, world)
    _no_credentials_reached(blob_host)
    # DagsHub itself was asked with the token, and answered each object with the redirect.
    redirects = [r for r in world.dagshub.requests if r.status == 307]
    assert len(redirects) >= ALL and all(r.authorized for r in redirects)


def test_sync_reads_through_the_redirect_without_sending_the_token_elsewhere(
    world: World, blob_host: DagsHubRemoteServer
) -> None:
    lost = sorted(k for k in world.s3_keys() if k.endswith(tuple("0123456789abcdef")))[:5]
    from servers.moto_s3 import s3_client

    client = s3_client(world.moto.endpoint_url)
    for key in lost:
        client.delete_object(Bucket=world.bucket, Key=key)
    runner = world.clone("runner")
    run = world.run_in(runner, "sync")
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    assert [(p["source"], p["destination"], p["objects_copied"]) for p in run.report["pairs"]] == [
        ("dagshub", "backblaze", len(lost))
    ]
    assert sorted(k for k in world.s3_keys() if k in lost) == lost
    _no_credentials_reached(blob_host)


def test_a_large_object_asked_as_ranges_through_the_redirect_keeps_the_token_home(
    world: World, blob_host: DagsHubRemoteServer, dead_url: str
) -> None:
    # Ranged GETs go through DVC's own session: each redirect hop to the blob host is
    # stripped of the token too. The blob host ignores Range: one stream, the file whole.
    project = world.project
    project.write_file("data/large.bin", 20 * 2**20, seed=5)
    project.dvc_add("data/large.bin")
    project.commit("A large file")
    project.seed_dir(world.dagshub.root, "data/large.bin.dvc")
    clone = world.clone_with_b2_dead(dead_url)
    run = world.run_in(clone, "pull", "--streams", "4", "--streams-cutoff", "16MiB")
    assert run.code == 0, run.stdout + run.stderr
    large = clone.root / "data" / "large.bin"
    assert large.read_bytes() == (project.root / "data" / "large.bin").read_bytes()
    ranged = [r for r in blob_host.requests if r.method == "GET" and r.headers.get("Range")]
    assert len(ranged) == 1  # asked once as a range, then as one stream
    _no_credentials_reached(blob_host)


def test_a_remote_that_refuses_head_is_checked_with_ranged_gets(world: World) -> None:
    world.dagshub.refuse_head = True
    run = world.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert run.report is not None
    dagshub = run.remote("dagshub")
    assert dagshub["state"] == "ok" and dagshub["objects_present"] == ALL
    assert dagshub["checked_with"] == "GET bytes=0-0"
    # Decided once: one refused HEAD, then GETs only, none of them reading a whole object.
    assert world.dagshub.count("HEAD") == 1
    gets = [r for r in world.dagshub.requests if r.method == "GET"]
    assert all(r.headers.get("Range") == "bytes=0-0" for r in gets)

    gone = [rel for rel in world.project.objects("data/images.dvc") if not rel.endswith(".dir")][:3]
    for rel in gone:
        world.dagshub.delete(rel)
    again = world.verify()
    assert again.code == 1, again.stdout + again.stderr
    assert again.report is not None
    missing = {m["md5"] for m in again.report["missing"]}
    assert missing == {rel.replace("files/md5/", "").replace("/", "") for rel in gone}
    assert all(m["missing_on"] == ["dagshub"] for m in again.report["missing"])


def test_a_remote_whose_redirects_go_round_is_named_as_such_not_as_fine(world: World) -> None:
    world.dagshub.redirect_loop = ("GET", "HEAD")
    run = world.verify()
    assert run.code == 3, run.stdout + run.stderr
    dagshub = run.remote("dagshub")
    assert dagshub["state"] == "error"
    assert dagshub["message"].startswith("HTTP 302: redirected 5 times without an answer")
    assert "a redirect loop; check the remote's URL" in dagshub["message"]
    assert "redirect loop" in run.stdout
    assert run.remote("backblaze")["state"] == "ok"
    # The probe's HEAD and the redirects aiohttp follows (5 answers in all), once: asking
    # again would go round the same way, so it is not retried.
    assert world.dagshub.count("HEAD") == 5


def test_downloads_that_go_round_in_redirects_are_not_asked_again(
    world: World, dead_url: str
) -> None:
    # HEAD answers (the probe passes), every GET goes round. DVC's client follows 10
    # redirects and tries 5 times itself: 50 answers each time we ask for an object. We ask
    # once per pass (the manifest twice: with the manifests, then with the rest), not 3 times.
    world.dagshub.redirect_loop = ("GET",)
    clone = world.clone_with_b2_dead(dead_url)
    run = world.run_in(clone, "pull", "-j", "4")
    assert run.code != 0, run.stdout + run.stderr
    assert run.report is not None
    assert len(run.report["missing"]) == ALL - FILES  # the manifest and model.bin
    assert world.dagshub.count("GET") == 50 * 3
    # Its downloads failed: that says nothing of what it holds, and the run says so.
    assert all(m["missing_on"] == [] for m in run.report["missing"])
    assert "not on dagshub" not in run.stdout
    assert "dagshub: 2 download(s) failed, so it may hold those objects all the same" in run.stdout
    assert "a redirect loop" in run.stdout


def test_a_runner_behind_an_http_proxy_reaches_dagshub_through_it(world: World) -> None:
    """``HTTP_PROXY`` set, as on a runner whose network goes through a proxy: the checks (our
    own session) and the downloads (DVC's) all go through it, none around it."""
    clone = world.clone()
    with LinkRelay(world.dagshub.port) as proxy:
        env = {"HTTP_PROXY": proxy.base_url, "NO_PROXY": "", "no_proxy": ""}
        run = world.run_in(clone, "pull", "-r", "dagshub", env=env)
        through = proxy.requests()
    assert run.code == 0, run.stdout + run.stderr
    assert run.remote("dagshub")["objects_served"] == ALL
    assert _workspace_complete(clone, world)
    # An HTTP proxy is asked for the whole URL; every request DagsHub saw came that way.
    assert len(through) == len(world.dagshub.requests)
    assert all(r.path.startswith(world.dagshub.base_url) for r in through)
    assert {r.method for r in through} == {"HEAD", "GET"}


def test_credentials_a_user_wrote_in_config_local_stay_home_too(
    world: World, blob_host: DagsHubRemoteServer, dead_url: str
) -> None:
    """The same with the credentials in ``config.local``, as a user writes them for DVC."""
    clone = world.clone_with_b2_dead(dead_url, "custom")
    (clone.root / ".dvc" / "config.local").write_text(
        f"['remote \"dagshub\"']\n    auth = basic\n    user = {TOKEN}\n    password = {TOKEN}\n"
    )
    run = clone.run("pull")
    assert run.code == 0, run.stdout + run.stderr
    assert _workspace_complete(clone, world)
    _no_credentials_reached(blob_host)
