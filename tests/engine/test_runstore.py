"""Run store: stable hashes, one folder per config, atomic writes, DONE manifests."""
from __future__ import annotations

import threading
import time

import pytest

from src.runstore import KEY_VERSION, Run, atomic_write, finished_runs, is_done, key_hash, locate, read_json, write_json


def test_hash_ignores_key_order_and_is_stable():
    a = {"model": {"name": "lenet", "init": "default"}, "seed": 1}
    b = {"seed": 1, "model": {"init": "default", "name": "lenet"}}
    assert key_hash(a) == key_hash(b)
    assert key_hash(a) == key_hash({"seed": 1, "model": {"name": "lenet", "init": "default"}})
    assert len(key_hash(a)) == 10


def test_different_config_different_folder(tmp_path):
    one = locate(tmp_path, "mnist", "train", "lenet", {"seed": 0})
    two = locate(tmp_path, "mnist", "train", "lenet", {"seed": 1})
    same = locate(tmp_path, "mnist", "train", "lenet", {"seed": 0})
    assert one.dir != two.dir and one.dir == same.dir
    assert one.dir.parent == tmp_path.resolve() / "mnist" / "train"
    assert one.dir.name.startswith("lenet-")


def _finished(tmp_path, key=None) -> Run:
    run = locate(tmp_path, "d", "train", "m", key or {"seed": 0})
    run.start({"seed": 0})
    run.write("model.keras", lambda tmp: tmp.write_bytes(b"x" * 100))
    run.finish({"test_accuracy": 0.5})
    return run


def test_finish_writes_manifest_last_and_is_done(tmp_path):
    run = _finished(tmp_path)
    assert run.is_done()
    assert run.metrics() == {"test_accuracy": 0.5}
    assert (run.dir / "config.yaml").exists() and (run.dir / "key.json").exists()
    assert finished_runs(tmp_path) == [run.dir]


def test_folder_without_done_is_not_finished(tmp_path):
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    run.file("model.keras").write_bytes(b"partial")
    assert not run.is_done()
    assert finished_runs(tmp_path) == []


def test_truncated_artifact_invalidates_done(tmp_path):
    run = _finished(tmp_path)
    run.file("model.keras").write_bytes(b"x" * 40)  # truncated after DONE was written
    assert not is_done(run.dir)
    run.start({"seed": 0})  # a restart drops the stale manifest
    assert not (run.dir / "DONE").exists()


def test_corrupt_manifest_is_not_finished(tmp_path):
    run = _finished(tmp_path)
    run.file("DONE").write_text("{not json")
    assert not run.is_done()


def test_manifest_lists_every_result_file_and_no_bookkeeping(tmp_path):
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    run.write("samples/epoch-001.png", lambda tmp: tmp.write_bytes(b"png"))
    run.write("model.keras", lambda tmp: tmp.write_bytes(b"k"))
    for bookkeeping in ("ckpt/checkpoint", "tensorboard/events", ".tmp-1-model.keras", ".lock"):
        run.file(bookkeeping).parent.mkdir(parents=True, exist_ok=True)
        run.file(bookkeeping).write_bytes(b"x")
    run.finish({})
    files = read_json(run.file("DONE"))["files"]
    assert sorted(files) == ["config.yaml", "key.json", "metrics.json", "model.keras", "samples/epoch-001.png"]
    run.file("samples/epoch-001.png").unlink()  # a figure lost after the fact unmarks the run
    assert not run.is_done()


def test_force_start_wipes_previous_result(tmp_path):
    run = _finished(tmp_path)
    run.start({"seed": 0}, force=True)
    assert not run.file("model.keras").exists() and not run.is_done()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_write_json_roundtrip_and_parent_creation(tmp_path):
    path = write_json(tmp_path / "a" / "b.json", {"x": 1})
    assert path.read_text().strip().startswith("{")


def test_lock_serialises_two_jobs_on_one_key(tmp_path):
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    order = []

    def job(name):
        with run.lock():
            order.append(f"{name}-in")
            time.sleep(0.2)
            order.append(f"{name}-out")

    threads = [threading.Thread(target=job, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert order[0].endswith("-in") and order[1].endswith("-out") and order[0][0] == order[1][0]


def test_nested_config_values_round_trip_through_key_json(tmp_path):
    from omegaconf import OmegaConf
    from src.runstore import read_json
    cfg = OmegaConf.create({"init": [0.15, 0.1], "inner": {"a": 1}})
    run = locate(tmp_path, "d", "p", "n", {"settings": {"init": cfg.init, "inner": cfg.inner}})
    run.start({})
    expected = {"settings": {"init": [0.15, 0.1], "inner": {"a": 1}}, "key_version": KEY_VERSION}
    assert read_json(run.file("key.json")) == run.key == expected


def test_the_key_version_is_part_of_every_key(tmp_path, monkeypatch):
    """A new key format moves every artifact to a new folder: old stores are recomputed, never misread."""
    from src import runstore
    before = locate(tmp_path, "d", "p", "n", {"a": 1})
    monkeypatch.setattr(runstore, "KEY_VERSION", KEY_VERSION + 1)
    assert locate(tmp_path, "d", "p", "n", {"a": 1}).dir != before.dir


def test_a_run_store_that_cannot_be_written_is_one_clear_error(tmp_path):
    from src.errors import ArtifactError
    from src.runstore import check_writable
    assert check_writable(tmp_path / "new" / "runs").is_dir()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for bad in (blocker, "/proc/kd-runner-runs"):
        with pytest.raises(ArtifactError, match=rf"paths.runs={bad}: the run store cannot be written there.*"
                                                r"fix: paths.runs=<a writable folder>"):
            check_writable(bad)
