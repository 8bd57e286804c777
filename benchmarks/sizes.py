"""Artifact sizes: what `sam build` produced for the layer and each function, unpacked and as the
deployment zip (deflate, as `sam package` uploads it)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.common import BUILD, FUNCTIONS


def measure(root: Path) -> dict[str, Any]:
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root).as_posix())
    return {
        "files": len(files),
        "bytes": sum(os.path.getsize(p) for p in files),
        "zip_bytes": buffer.getbuffer().nbytes,
    }


def artifact_sizes() -> dict[str, Any]:
    names = {"layer": "BrokerLayer"} | FUNCTIONS
    return {label: measure(BUILD / name) for label, name in names.items()}
