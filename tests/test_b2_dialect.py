"""B2's S3 dialect: no flexible checksums, parts B2 takes, and a refused upload named as such.

The test S3 server answers botocore's default checksum headers as B2 does (400 InvalidArgument),
so every scenario here would fail if our client started sending them again.
"""

from __future__ import annotations

import http.client
import math
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from dvc_multiremote.remotes.classify import classify_status
from projects import DVC_ON_B2_ENV, PREFIX, Project, World, cli_env, dvc_env
from servers.faults import SDK_CALL_HEADER, Fault
from servers.link import LinkRelay
from servers.moto_s3 import B2_ERROR_BODY, MotoS3, s3_client

B2_MIN_PART = 5_000_000
B2_MAX_PART = 5_000_000_000
B2_MAX_PARTS = 10_000
B2_HEADER_MESSAGE = "Unsupported header 'x-amz-sdk-checksum-algorithm' received for this API call."
MULTIPART_SIZE = 100 * 2**20 + 1  # s3fs puts anything of twice its 50 MiB part or more in parts


def _add_data(project: Project, name: str, files: int, seed: int) -> set[str]:
    """New data (a directory and a file), added and committed; its object paths."""
    project.write_dir(f"data/{name}", files, seed=seed)
    project.write_file(f"data/{name}.csv", 40_000, seed=seed + 1)
    project.dvc_add(f"data/{name}", f"data/{name}.csv")
    project.commit(f"Add {name}")
    return set(project.objects(f"data/{name}.dvc", f"data/{name}.csv.dvc"))


def _spoke_b2(world: World) -> None:
    """Nothing was refused, and no request carried a header B2 refuses."""
    assert world.moto.refusals.snapshot() == []
    assert [r for r in world.s3.requests if r.status == 400] == []
    sent = {name.lower() for r in world.s3.requests for name in r.headers}
    assert not {h for h in sent if h.startswith(("x-amz-checksum-", "x-amz-sdk-checksum"))}
    assert "x-amz-trailer" not in sent
    assert not [r for r in world.s3.requests if "aws-chunked" in str(r.headers).lower()]


def _s3_has(world: World, objects: set[str]) -> bool:
    return {f"{PREFIX}/{rel}" for rel in objects} <= set(world.s3_keys())


def test_push_to_b2_alone_then_to_both_speaks_b2s_dialect(world: World) -> None:
    first = _add_data(world.project, "first", 12, seed=51)
    alone = world.run("push", "-r", "backblaze")
    assert alone.code == 0, alone.stderr + alone.stdout
    assert alone.remote("backblaze")["objects_pushed"] == len(first)
    assert _s3_has(world, first)

    second = _add_data(world.project, "second", 9, seed=61)
    both = world.run("push")
    assert both.code == 0, both.stderr + both.stdout
    assert both.remote("backblaze")["objects_pushed"] == len(second)
    assert both.remote("dagshub")["objects_pushed"] == len(first | second)
    assert _s3_has(world, second)
    assert world.verify().code == 0
    _spoke_b2(world)


def test_a_file_over_100_mib_goes_up_to_b2_in_parts_b2_takes(world: World) -> None:
    project = world.project
    project.write_file("data/weights.bin", MULTIPART_SIZE, seed=71)
    project.dvc_add("data/weights.bin")
    project.commit("Weights")
    world.s3.clear_log()
    run = world.run("push", "-r", "backblaze")
    assert run.code == 0, run.stderr + run.stdout
    parts = [r.bytes_in for r in world.s3.requests if r.method == "PUT" and "partNumber=" in r.path]
    assert any(r.method == "POST" and r.path.endswith("?uploads") for r in world.s3.requests)
    assert sum(parts) == MULTIPART_SIZE
    assert 2 <= len(parts) <= B2_MAX_PARTS
    assert all(B2_MIN_PART <= size <= B2_MAX_PART for size in sorted(parts)[1:])
    clone = world.clone()
    pulled = world.run_in(clone, "pull", "-r", "backblaze", "data/weights.bin.dvc")
    assert pulled.code == 0, pulled.stderr + pulled.stdout
    assert (clone.root / "data" / "weights.bin").read_bytes() == (
        project.root / "data" / "weights.bin"
    ).read_bytes()
    _spoke_b2(world)


@pytest.mark.parametrize("size", [MULTIPART_SIZE, 5 * 2**30, 600 * 2**30, 10 * 10**12])
def test_s3fs_cuts_every_upload_into_parts_b2_takes(size: int) -> None:
    # DVC uploads through s3fs's put_file with its default part size; an s3fs upgrade that
    # changed it must show up here.
    from s3fs.core import calculate_chunksize

    part = calculate_chunksize(size)
    assert B2_MIN_PART <= part <= B2_MAX_PART
    assert math.ceil(size / part) <= B2_MAX_PARTS


def test_sync_into_b2_then_pull_and_verify_from_it_speak_b2s_dialect(world: World) -> None:
    objects = sorted(world.project.objects("data/images.dvc", "data/model.bin.dvc"))
    gone = [rel for rel in objects if not rel.endswith(".dir")][:8]
    client = s3_client(world.moto.endpoint_url)
    for rel in gone:
        client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{rel}")
    world.s3.clear_log()

    synced = world.run_in(world.clone("runner"), "sync")
    assert synced.code == 0, synced.stderr + synced.stdout
    assert synced.report is not None
    assert [
        (p["source"], p["destination"], p["objects_copied"]) for p in synced.report["pairs"]
    ] == [("dagshub", "backblaze", len(gone))]
    assert _s3_has(world, set(gone))

    clone = world.clone()
    pulled = world.run_in(clone, "pull", "-r", "backblaze")
    assert pulled.code == 0, pulled.stderr + pulled.stdout
    assert pulled.remote("backblaze")["objects_served"] == len(objects)
    assert (clone.root / "data" / "model.bin").is_file()
    verified = world.verify("-r", "backblaze")
    assert verified.code == 0, verified.stderr + verified.stdout
    _spoke_b2(world)
    # Uploads, downloads and listings went the lean way (remotes/s3_signed.py): signed as
    # botocore signs, without its per-call headers, which only the probes carry.
    lean = [r for r in world.s3.requests if not _has_header(r.headers, "amz-sdk-invocation-id")]
    assert all(_has_header(r.headers, "authorization") for r in lean)
    assert len([r for r in lean if r.method == "PUT"]) == len(gone)
    assert len([r for r in lean if r.kind == "GET" and r.status == 200]) == len(objects)
    listings = [r for r in world.s3.requests if r.kind == "LIST"]
    assert listings
    assert all(r in lean and r.status == 200 for r in listings)


def test_a_store_that_refuses_our_own_signed_requests_gets_botocores_calls(world: World) -> None:
    """Should a store read the requests we sign ourselves otherwise than botocore's, the pull
    and the push still complete: the lean path is dropped at its first refusal."""
    objects = world.project.objects("data/images.dvc", "data/model.bin.dvc")
    world.s3.set_fault(Fault("signature_mismatch"))
    world.s3.clear_log()
    clone = world.clone()
    pulled = world.run_in(clone, "pull", "-r", "backblaze", "-j", "4")
    assert pulled.code == 0, pulled.stderr + pulled.stdout
    backblaze = pulled.remote("backblaze")
    assert (backblaze["state"], backblaze["objects_served"]) == ("ok", len(objects))
    # Our own requests: only those in flight when the first refusal came back, all refused.
    lean = [r for r in world.s3.requests if not _has_header(r.headers, SDK_CALL_HEADER)]
    assert 1 <= len(lean) <= 4
    assert all(r.fault == "signature_mismatch" for r in lean)

    new = _add_data(world.project, "fresh", 12, seed=91)
    world.s3.clear_log()
    pushed = world.run("push", "-r", "backblaze", "-j", "4")
    assert pushed.code == 0, pushed.stderr + pushed.stdout
    assert pushed.remote("backblaze")["objects_pushed"] == len(new)
    lean = [r for r in world.s3.requests if not _has_header(r.headers, SDK_CALL_HEADER)]
    assert 1 <= len(lean) <= 4
    assert all(r.fault == "signature_mismatch" for r in lean)
    assert _s3_has(world, new)


def _has_header(headers: dict[str, str], name: str) -> bool:
    return name in {key.lower() for key in headers}


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (403, "AccessDenied", "Access Denied"),  # a key that may read but not write
        (400, "InvalidArgument", B2_HEADER_MESSAGE),  # B2 refusing a header we would send
    ],
)
def test_a_b2_that_refuses_uploads_is_named_with_its_answer_and_push_exits_3(
    world: World, status: int, code: str, message: str
) -> None:
    new = _add_data(world.project, "fresh", 20, seed=81)
    with world.moto.refusing_uploads(status, code, message):
        run = world.run("push", "-j", "4")
    assert run.code == 3, run.stderr + run.stdout
    backblaze = run.remote("backblaze")
    assert backblaze["state"] == "error"
    assert backblaze["message"] == f"refused uploads: HTTP {status} {code}: {message}"
    assert f"refused uploads: HTTP {status} {code}: {message}" in run.stdout
    assert run.markdown is not None and "refused uploads" in run.markdown
    assert run.remote("dagshub")["state"] == "ok"
    assert run.remote("dagshub")["objects_pushed"] == len(new)
    # Refused once per upload in flight, not retried object after object...
    assert 1 <= len(world.moto.refusals.snapshot()) <= 4
    assert not _s3_has(world, new)
    # ...and every object it did not get is listed, the ones never tried included.
    paths = world.project.objects("data/fresh.dvc", "data/fresh.csv.dvc")
    assert run.missing_paths("backblaze") == {paths[rel] for rel in new}


def test_sync_into_a_b2_that_refuses_uploads_names_it_and_exits_3(world: World) -> None:
    gone = sorted(rel for rel in world.project.objects("data/images.dvc") if rel[-4:] != ".dir")
    client = s3_client(world.moto.endpoint_url)
    for rel in gone[:5]:
        client.delete_object(Bucket=world.bucket, Key=f"{PREFIX}/{rel}")
    with world.moto.refusing_uploads():
        run = world.run("sync")
    assert run.code == 3, run.stderr + run.stdout
    assert run.remote("backblaze")["state"] == "error"
    assert run.remote("backblaze")["message"] == (
        "refused uploads: HTTP 403 AccessDenied: Access Denied"
    )


def test_a_client_with_botocores_defaults_is_refused_as_b2_refuses_it(
    moto: MotoS3, s3_bucket: str
) -> None:
    moto.put_key(s3_bucket, "kept", b"kept")
    moto.refusals.clear()
    default = s3_client(moto.endpoint_url, botocore_checksums=True)
    with pytest.raises(ClientError) as put:
        default.put_object(Bucket=s3_bucket, Key="new", Body=b"data")
    assert put.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert put.value.response["Error"] == {"Code": "InvalidArgument", "Message": B2_HEADER_MESSAGE}
    with pytest.raises(ClientError) as get:
        default.get_object(Bucket=s3_bucket, Key="kept")
    assert "'x-amz-checksum-mode'" in get.value.response["Error"]["Message"]
    assert [(r.method, r.status) for r in moto.refusals.snapshot()] == [("PUT", 400), ("GET", 400)]
    assert moto.list_keys(s3_bucket) == ["kept"]


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        ("x-amz-sdk-checksum-algorithm", "CRC32", "x-amz-sdk-checksum-algorithm"),
        ("x-amz-checksum-crc32", "AAAAAA==", "x-amz-checksum-crc32"),
        ("x-amz-trailer", "x-amz-checksum-crc32", "x-amz-trailer"),
        ("Content-Encoding", "aws-chunked", "content-encoding"),
    ],
)
def test_b2s_refusal_is_byte_for_byte_b2s(
    moto: MotoS3, s3_bucket: str, header: str, value: str, named: str
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", moto.port, timeout=10)
    conn.request("PUT", f"/{s3_bucket}/key", body=b"data", headers={header: value})
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 400
    assert body == B2_ERROR_BODY.format(
        code="InvalidArgument",
        message=f"Unsupported header '{named}' received for this API call.",
    )


def test_the_real_dvc_without_the_two_settings_is_refused_by_b2(world: World) -> None:
    # What a DVC user on B2 meets, and why set-up runs of `dvc` get dvc_env(): our own command
    # needs neither, it configures its client itself.
    _add_data(world.project, "dvc", 3, seed=91)
    command = [sys.executable, "-m", "dvc", "push", "-r", "backblaze"]
    bare = subprocess.run(
        command, cwd=world.project.root, env=cli_env(), capture_output=True, text=True, check=False
    )
    assert bare.returncode != 0, bare.stdout + bare.stderr
    refused = world.moto.refusals.snapshot()
    assert refused, bare.stdout + bare.stderr
    assert {(r.status, r.code) for r in refused} == {(400, "InvalidArgument")}
    world.moto.refusals.clear()
    done = subprocess.run(
        command, cwd=world.project.root, env=dvc_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert world.moto.refusals.snapshot() == []


def test_runs_of_our_command_never_get_the_settings_only_the_real_dvc_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not DVC_ON_B2_ENV.keys() & os.environ.keys()  # in-process runs
    for name, value in DVC_ON_B2_ENV.items():
        monkeypatch.setenv(name, value)  # a developer's shell may have them
    assert not DVC_ON_B2_ENV.keys() & cli_env({"B2_APPLICATION_KEY": "k"}).keys()
    assert dvc_env().items() >= DVC_ON_B2_ENV.items()


def test_which_answers_refuse_a_request_outright() -> None:
    b2 = classify_status(400, "InvalidArgument", B2_HEADER_MESSAGE)
    assert b2 is not None and b2.refused
    assert b2.answer == f"HTTP 400 InvalidArgument: {B2_HEADER_MESSAGE}"
    denied = classify_status(403, "AccessDenied", "Access Denied")
    assert denied is not None and denied.refused
    for status, code in [(400, "RequestTimeout"), (400, "BadDigest"), (429, None), (503, None)]:
        again = classify_status(status, code)
        assert again is not None and not again.refused, (status, code)
    assert classify_status(404, "NoSuchKey") is None


def test_a_runner_behind_an_http_proxy_sends_every_s3_request_through_it(world: World) -> None:
    """A runner whose network goes through a proxy (``HTTP_PROXY``, as botocore reads it):
    the lean requests go where botocore's would, through the proxy, not around it."""
    objects = world.project.objects("data/images.dvc", "data/model.bin.dvc")
    world.s3.clear_log()
    with LinkRelay(world.s3.port, s3=True) as proxy:
        env = {"HTTP_PROXY": proxy.base_url, "NO_PROXY": "", "no_proxy": ""}
        pulled = world.run_in(world.clone(), "pull", "-r", "backblaze", env=env)
        through = proxy.requests()
    assert pulled.code == 0, pulled.stderr + pulled.stdout
    assert pulled.remote("backblaze")["objects_served"] == len(objects)
    # An HTTP proxy is asked for the whole URL; every request the store saw came that way.
    assert len(through) == len(world.s3.requests)
    assert all(r.path.startswith(world.s3.base_url) for r in through)
    assert len([r for r in through if r.kind == "GET" and r.status == 200]) == len(objects)
