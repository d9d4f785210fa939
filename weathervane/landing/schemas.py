"""JSON Schemas of the landing streams, exported from the pydantic models into assets/schemas.

The models are the source of truth; the exported files document the contract for senders and are kept
current by a test.
"""
from __future__ import annotations

import json
from pathlib import Path

from weathervane.config import assets_dir
from weathervane.landing.streams import STREAMS, Stream


def schemas_dir() -> Path:
    return assets_dir() / "schemas"


def json_schema(stream: Stream) -> dict:
    schema = stream.adapter().json_schema(by_alias=True)
    schema["title"] = f"{stream.source}/{stream.stream}"
    schema["description"] = stream.description
    schema["x-weathervane"] = {
        "source": stream.source,
        "stream": stream.stream,
        "format": stream.format,
        "files": stream.glob,
        "primary_key": list(stream.primary_key),
        "raw_table": stream.table,
        **({"required_columns": list(stream.required_columns)} if stream.required_columns else {}),
    }
    return schema


def render(stream: Stream) -> str:
    return json.dumps(json_schema(stream), indent=2, ensure_ascii=False) + "\n"


def export_json_schemas(dest: Path | None = None) -> list[Path]:
    """Write `<source>__<stream>.json` for every stream; returns the written paths."""
    dest = Path(dest) if dest is not None else schemas_dir()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for s in STREAMS:
        path = dest / f"{s.key}.json"
        path.write_text(render(s), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(dest: Path | None = None) -> list[str]:
    """Names of schema files that are missing or differ from what the models export."""
    dest = Path(dest) if dest is not None else schemas_dir()
    stale = []
    for s in STREAMS:
        path = dest / f"{s.key}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(s):
            stale.append(path.name)
    return stale


if __name__ == "__main__":
    for p in export_json_schemas():
        print(p)
