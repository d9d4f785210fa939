"""Hostile input, generated: every landing stream's parser is fed mutated real records (wrong types, NaN, huge
numbers, SQL and Rich markup in strings and column names, odd dates, garbage lines, broken gzip) and must
either accept records the warehouse can hold or refuse the file with readable problems, never raise.

Runs derandomized in CI (the same examples every run, bounded time); set WEATHERVANE_FUZZ_RANDOM=1 (and
WEATHERVANE_FUZZ_EXAMPLES=500) to explore new examples locally.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ACME_EXAMPLE
from weathervane.landing import STREAMS, parse_file
from weathervane.landing.parse import COLUMN_NAME

FUZZ = settings(max_examples=int(os.environ.get("WEATHERVANE_FUZZ_EXAMPLES", "50")), deadline=None, database=None,
                derandomize=not os.environ.get("WEATHERVANE_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

HOSTILE_STRINGS = [
    "", " ", "' or 1=1 --", "x'); select read_text('/etc/hostname'); --", "[/x]", "[bold]", "1e400", "-1e400",
    "NaN", "nan", "inf", "-0", "9" * 30, "2200-01-10", "1970-01-01", "2024-06-03T09:00:00",
    "2024-06-03T09:00:00+14:00", "2024-13-45", "\x00", "\u202e", "９９", "1_000", " 12 ", "0x10", "US-ZZ",
    "California", "geoTargetConstants/21137", "geoTargetConstants/9999999999999999999999", "spend_Meta",
]
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(HOSTILE_STRINGS),
)
VALUE = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _seed(stream) -> list[dict] | dict | tuple[list[str], list[list[str]]]:
    folder = ACME_EXAMPLE / stream.folder
    path = next(p for p in sorted(folder.rglob("*")) if p.is_file())
    text = path.read_text()
    if stream.format == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if stream.format == "json":
        return json.loads(text)
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def _paths(obj, prefix=()):
    """Every path to a value inside a JSON object."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _replace(obj, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        return {**obj, head: _replace(obj[head], rest, value)}
    out = list(obj)
    out[head] = _replace(out[head], rest, value)
    return out


@st.composite
def mutated(draw, record):
    """The record with a few values replaced, keys dropped or hostile keys added."""
    for _ in range(draw(st.integers(0, 3))):
        paths = list(_paths(record))
        kind = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
        path = draw(st.sampled_from(paths))
        if kind == "replace":
            record = _replace(record, path, draw(VALUE))
        elif kind == "drop" and path and isinstance(record, dict) and path[0] in record:
            record = {k: v for k, v in record.items() if k != path[0]}
        elif kind == "add" and isinstance(record, dict):
            record = {**record, draw(st.one_of(st.text(max_size=10), st.sampled_from(HOSTILE_STRINGS))): draw(VALUE)}
    return record


def _json_text(obj, draw) -> str:
    # allow_nan: senders do write NaN and Infinity; ensure_ascii varies how strings reach the parser
    return json.dumps(obj, allow_nan=True, ensure_ascii=draw(st.booleans()))


@st.composite
def file_bytes(draw, stream):
    seed = _seed(stream)
    if stream.format == "jsonl":
        lines = [_json_text(draw(mutated(r)), draw) for r in draw(st.lists(st.sampled_from(seed), min_size=1,
                                                                           max_size=3))]
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.text(max_size=30)))  # a garbage line
        data = ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode()
    elif stream.format == "json":
        data = _json_text(draw(mutated(seed)), draw).encode()
    else:
        header, rows = seed
        header = list(header)
        if draw(st.booleans()):
            header.append(draw(st.one_of(st.text(max_size=12), st.sampled_from(HOSTILE_STRINGS))))
        cell = st.one_of(st.text(max_size=10), st.sampled_from(HOSTILE_STRINGS),
                         st.floats(allow_nan=True, allow_infinity=True).map(repr))
        out_rows = []
        for row in rows[:2]:
            row = list(row) + [""] * (len(header) - len(row))
            for _ in range(draw(st.integers(0, 2))):
                row[draw(st.integers(0, len(row) - 1))] = draw(cell)
            out_rows.append(row)
        buf = io.StringIO()
        csv.writer(buf).writerows([header, *out_rows])
        data = buf.getvalue().encode()
    return data


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    yield con
    con.close()


def _finite_everywhere(text: str) -> None:
    def refuse(token):
        raise AssertionError(f"non-finite token {token} accepted")

    def walk(value):
        if isinstance(value, float):
            assert math.isfinite(value), text
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(json.loads(text, parse_constant=refuse))


def _check(stream, data: bytes, path: str, duck) -> None:
    parsed = parse_file(stream, data, path)  # must not raise
    if not parsed.ok:
        assert parsed.records == [] and parsed.problems
        for problem in parsed.problems:
            assert problem.message and isinstance(problem.describe(f"{stream.folder}/{path}"), str)
        return
    assert parsed.records
    for _, text in parsed.records:
        _finite_everywhere(text)
        duck.execute("select ?::JSON", [text]).fetchall()  # what the raw insert does
        if stream.format == "csv":
            keys = list(json.loads(text))
            assert all(COLUMN_NAME.fullmatch(k) for k in keys), keys
            assert len({k.lower() for k in keys}) == len(keys), keys
        else:
            stream.adapter().validate_json(text)  # what was accepted still validates


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.key)
def test_every_stream_parser_refuses_or_accepts_cleanly(stream, duck):
    name = "US-CA/f.json" if stream.geo_folders else f"f{stream.suffixes[0]}"

    @FUZZ
    @given(data=file_bytes(stream), gz=st.sampled_from(["plain", "plain", "gzip", "truncated"]))
    def run(data, gz):
        path = name
        if gz != "plain" and any(s.endswith(".gz") for s in stream.suffixes):
            path = name + ".gz"
            data = gzip.compress(data)
            if gz == "truncated":
                data = data[: len(data) // 2]
        _check(stream, data, path, duck)

    run()


@FUZZ
@given(data=st.binary(max_size=200), gzipped=st.booleans())
def test_arbitrary_bytes_never_raise(data, gzipped):
    for stream in STREAMS:
        name = "US-CA/f.json" if stream.geo_folders else f"f{stream.suffixes[0]}"
        parsed = parse_file(stream, data, name + (".gz" if gzipped else ""))
        assert parsed.ok or (parsed.problems and not parsed.records)
