"""Reading an offline W&B run back from the files W&B wrote, for the logger=wandb tests.

W&B keeps an offline run as a folder wandb/offline-run-<time>-<id>/ whose run-<id>.wandb is
the record log `wandb sync` uploads: a 7-byte header (":W&B", magic 0xBEE1, version 0), then
blocks of 32 KiB holding records, each a 7-byte header (checksum, length, kind: full, first,
middle or last piece) and a piece of one serialized `wandb.proto.wandb_internal_pb2.Record`;
a block's last few bytes are zero padding when no header fits. W&B ships no reader for it,
so this one checks the header and fails loudly on anything else.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What an offline run holds, as W&B would upload it."""
    folder: Path
    id: str = ""
    name: str = ""
    group: str = ""
    project: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # one dict per logged step, with _step
    summary: dict = field(default_factory=dict)
    artifacts: list[dict] = field(default_factory=list)  # name, type, files
    exit_code: int | None = None


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under a `wandb/` folder, oldest first."""
    return [read_run(folder) for folder in sorted(Path(wandb_dir).glob("offline-run-*"))]


def read_run(folder: Path) -> OfflineRun:
    from wandb.proto import wandb_internal_pb2 as pb
    (log,) = Path(folder).glob("run-*.wandb")
    run = OfflineRun(folder=Path(folder))
    for data in records(log):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.id, run.name, run.group, run.project, run.job_type = (r.run_id, r.display_name, r.run_group,
                                                                      r.project, r.job_type)
            run.tags = list(r.tags)
            run.config.update(_items(r.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append({"name": a.name, "type": a.type, "files": sorted(e.path for e in a.manifest.contents)})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v for k, v in run.config.items()
                  if not k.startswith("_")}
    return run


def records(path: Path):
    """The serialized records of a .wandb log, pieces joined."""
    blob = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", blob[:HEADER])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"{path}: not a W&B record log {(ident, magic, version)}"
    position, pending = HEADER, b""
    while position + HEADER <= len(blob):
        left = BLOCK - position % BLOCK
        if left < HEADER:  # zero padding to the end of the block
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", blob[position:position + HEADER])
        piece = blob[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind == FULL:
            yield piece
        elif kind == FIRST:
            pending = piece
        elif kind == MIDDLE:
            pending += piece
        elif kind == LAST:
            yield pending + piece
        elif kind == 0 and length == 0:
            continue
        else:
            raise AssertionError(f"{path}: unknown record piece kind {kind} at byte {position}")


def _items(items) -> dict:
    """A proto list of (key or nested_key, value_json) as {dotted key: value}."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}
