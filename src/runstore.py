"""The run store: one folder per artifact, named by a hash of what determines it.

    <runs>/<dataset>/<procedure>/<name>-<hash>/
        config.yaml   the full resolved config that made it
        key.json      the part of it that determines the artifact (what is hashed)
        ...           artifacts, written to a temporary name and renamed
        DONE          written last: a manifest of the artifact files and their sizes

Same key, same folder: re-running a finished command reuses it, and a multirun sweep
never overwrites itself. A folder without a valid DONE is unfinished and is resumed,
never read as a result. No TensorFlow here.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from omegaconf import DictConfig, OmegaConf

from src.errors import ArtifactError

DONE = "DONE"
NOT_ARTIFACTS = (DONE, "ckpt", "tensorboard")  # in a run folder, but no part of its result
KEY_VERSION = 2  # part of every key: raised when the key format changes, so old stores are recomputed once
log = logging.getLogger(__name__)


def to_plain(value: Any) -> Any:
    """OmegaConf nodes to plain Python containers (resolved), at any depth, so that a
    key hashes and round-trips through key.json the same way."""
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def key_hash(key: dict) -> str:
    """Stable short hash of a JSON-able dict: key order and container types do not matter."""
    text = json.dumps(to_plain(key), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) on a temporary sibling of path, then rename it into place.

    The temporary name keeps the suffix, because some writers (Keras) insist on it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def file_digest(path: Path) -> str:
    """Short content hash of a file, for keys that depend on a user-given artifact."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def write_json(path: Path, data: Any) -> Path:
    text = json.dumps(to_plain(data), indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


@dataclass(frozen=True)
class Run:
    """One artifact folder of the store."""

    dir: Path
    key: dict

    @property
    def hash(self) -> str:
        return key_hash(self.key)

    def file(self, name: str) -> Path:
        return self.dir / name

    def is_done(self) -> bool:
        """True only when DONE exists and every file it lists has its recorded size."""
        return is_done(self.dir)

    def start(self, config: DictConfig | dict, force: bool = False) -> None:
        """Create the folder and record what makes it; force=true wipes a previous result."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if force:  # keep the lock file: the caller holds it
            for child in self.dir.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        done = self.file(DONE)
        if done.exists() and not self.is_done():
            done.unlink()  # a manifest whose files no longer match is no result at all
        text = OmegaConf.to_yaml(OmegaConf.create(to_plain(config)), resolve=True)
        atomic_write(self.file("config.yaml"), lambda tmp: tmp.write_text(text))
        write_json(self.file("key.json"), self.key)

    def write(self, name: str, write: Callable[[Path], Any]) -> Path:
        """Write the file `name` of this run atomically (write(tmp), then rename)."""
        return atomic_write(self.file(name), write)

    def save_model(self, model: Any, name: str = "model.keras") -> Path:
        """Save a Keras model as the file `name` of this run, atomically."""
        return self.write(name, lambda tmp: model.save(tmp))

    def artifacts(self) -> list[str]:
        """Every file of the run, as paths relative to its folder, except the bookkeeping
        that is not a result: checkpoints, TensorBoard events, the lock, temporary files."""
        names = []
        for path in self.dir.rglob("*"):
            relative = path.relative_to(self.dir)
            if path.is_file() and relative.parts[0] not in NOT_ARTIFACTS and \
                    not any(part.startswith(".") for part in relative.parts):
                names.append(relative.as_posix())
        return sorted(names)

    def finish(self, metrics: dict) -> None:
        """Write metrics.json (with the facts of the data it ran on, see note_data), then
        DONE (last of all): a manifest of every file the run holds with its size, so a file
        changed or lost later unmarks the run."""
        metrics.update(_data_facts)
        write_json(self.file("metrics.json"), metrics)
        names = self.artifacts()
        manifest = {
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": {n: self.file(n).stat().st_size for n in names},
        }
        write_json(self.file(DONE), manifest)

    def metrics(self) -> dict:
        return read_json(self.file("metrics.json"))

    def produce(self, config: DictConfig, make: Callable[[], dict], what: str) -> dict:
        """The metrics of this artifact: reused when finished (unless config.force), else
        made by `make()` (which ends with finish()), all under the folder's lock."""
        with self.lock():
            if self.is_done() and not config.force:
                log.info("%s: reusing finished run %s", what, self.dir)
                metrics = self.metrics()
            else:
                self.start(config, force=config.force)
                metrics = make()
        _produced.append(self.dir)
        return metrics

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the folder: a second job with the same key waits here."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_produced: list[Path] = []  # folders of Run.produce calls in this process, outermost last
_data_facts: dict = {}  # what the data set loaded last says of itself (files skipped as unreadable)


def note_data(facts: dict) -> None:
    """Record the facts of the data set this process runs on: every run it finishes
    afterwards adds them to its metrics."""
    _data_facts.clear()
    _data_facts.update(facts)


def produced_runs() -> list[Path]:
    """Run folders produced or reused in this process; an upstream run finishes before
    the run that needed it, so the last one is the run the user asked for."""
    return list(_produced)


def is_done(folder: Path) -> bool:
    folder = Path(folder)
    try:
        manifest = read_json(folder / DONE)
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all(
        (folder / name).is_file() and (folder / name).stat().st_size == size
        for name, size in files.items()
    )


def check_writable(runs_root: str | Path) -> Path:
    """The run store's folder, created if needed; a one-line error naming it and the fix
    when it cannot be created or written (a read-only or full disk, /proc, ...)."""
    root = Path(runs_root).expanduser()
    probe = root / f".write-test-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as error:
        raise ArtifactError(f"paths.runs={runs_root}: the run store cannot be written there ({error.strerror or error}); "
                            f"fix: paths.runs=<a writable folder>") from None
    return root


def locate(runs_root: str | Path, dataset: str, procedure: str, name: str, key: dict) -> Run:
    """The folder an artifact with this key lives in (created later, by Run.start)."""
    key = {**to_plain(key), "key_version": KEY_VERSION}
    folder = Path(runs_root).expanduser().resolve() / dataset / procedure / f"{name}-{key_hash(key)}"
    return Run(dir=folder, key=key)


def finished_runs(runs_root: str | Path) -> list[Path]:
    """Every finished run folder below runs_root, oldest first."""
    root = Path(runs_root).expanduser()
    if not root.exists():
        return []
    folders = [p.parent for p in root.rglob(DONE) if is_done(p.parent)]
    return sorted(folders, key=lambda p: (p / DONE).stat().st_mtime)
