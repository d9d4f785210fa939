"""Parse and validate one landing file's bytes into raw records, or into the problems that refuse it.

A file is all-or-nothing: any problem quarantines it whole, so the parser keeps going past the first problem
only to count them (and report the first few), never to load part of the file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import zlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from weathervane import reference
from weathervane.landing.streams import Stream

MAX_PROBLEMS_KEPT = 50
# Bounds on what one file may cost: its bytes as delivered and once decompressed, and one line (a record).
MAX_FILE_BYTES = 256 << 20
MAX_DECOMPRESSED_BYTES = 256 << 20
MAX_LINE_BYTES = 8 << 20
# CSV column names become keys the marts read by name: letters, digits and underscores only.
COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# Errors whose message does not show the offending value by itself.
_SHOW_INPUT = {"money", "numeric_string", "int_like", "identifier", "int_type", "float_type", "string_type",
               "bool_type", "literal_error", "date_parsing", "datetime_parsing", "date_type", "datetime_type",
               "int_parsing", "float_parsing", "timezone_aware", "finite_number", "greater_than_equal",
               "less_than_equal"}


@dataclass(frozen=True)
class Problem:
    line: int | None  # 1-based line in the file; None when the whole file is concerned
    field: str | None  # dotted path of the field; None when not field-specific
    message: str

    def describe(self, file_path: str) -> str:
        where = file_path
        if self.line is not None:
            where += f" line {self.line}"
        if self.field is not None:
            where += f" field {self.field}"
        return f"{where}: {self.message}"


@dataclass
class ParsedFile:
    records: list[tuple[int, str]] = field(default_factory=list)  # (source_line, JSON text as delivered)
    geo_id: str | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)


def _loc(loc: tuple) -> str | None:
    return ".".join(str(p) for p in loc) if loc else None


def _add_validation_errors(parsed: ParsedFile, line: int | None, exc: ValidationError) -> None:
    for err in exc.errors(include_url=False):
        if err["type"] == "json_invalid":
            parsed.add(Problem(line, None, f"not valid JSON: {err['msg'].removeprefix('Invalid JSON: ')}"))
        elif err["type"] in ("model_type", "model_attributes_type") and not err["loc"]:
            parsed.add(Problem(line, None, "expected a JSON object"))
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] in _SHOW_INPUT:
                shown = repr(err.get("input"))
                msg += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
            parsed.add(Problem(line, _loc(err["loc"]), msg))


def gunzip(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> tuple[bytes | None, str | None]:
    """(decompressed bytes, None) or (None, why not): never more than `limit` bytes are produced."""
    if not data:
        return None, "empty file: a .gz file must hold a gzip stream"
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(wbits=31)  # one gzip member; concatenated members follow each other
            while rest and not d.eof:
                out += d.decompress(rest, limit + 1 - len(out))
                if len(out) > limit:
                    return None, f"more than {limit} bytes once decompressed (refused as a decompression bomb)"
                rest = d.unconsumed_tail
            if not d.eof:
                return None, "not a readable gzip file: truncated (the stream ends early)"
            rest = d.unused_data
            if rest and not rest.lstrip(b"\0"):
                break  # zero padding after the last member, as some writers leave
    except zlib.error as exc:
        return None, f"not a readable gzip file: {exc}"
    return bytes(out), None


def _decode(data: bytes, parsed: ParsedFile, gzipped: bool, limit: int = MAX_FILE_BYTES) -> str | None:
    if len(data) > limit:
        parsed.add(Problem(None, None, f"file of {len(data)} bytes is larger than the {limit} allowed"))
        return None
    if gzipped:
        data, problem = gunzip(data, min(limit, MAX_DECOMPRESSED_BYTES))
        if data is None:
            parsed.add(Problem(None, None, problem))
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        parsed.add(Problem(line, None, f"not UTF-8 text (byte {exc.start})"))
        return None


def _run_check(stream: Stream, record, line: int | None, parsed: ParsedFile) -> bool:
    if stream.check is None:
        return True
    ok = True
    for fld, message in stream.check(record):
        parsed.add(Problem(line, fld, message))
        ok = False
    return ok


NON_FINITE_MESSAGE = ("NaN, Infinity or a number beyond a double (such as 1e400) is not a JSON number; "
                      "send null for a missing value")
# What a non-finite number can look like in JSON text: NaN, Infinity, or an exponent of three digits or more.
_NON_FINITE_HINT = re.compile(r"NaN|Infinity|[0-9][eE][+]?[0-9]{3}")


def _non_finite_token(line: str) -> bool:
    """True when the JSON text holds NaN, Infinity or a number beyond a double (1e400), in any field, kept
    ones included: JSON has no such numbers, and whatever reads the field later would get nan or inf."""
    if not _NON_FINITE_HINT.search(line):
        return False  # the common case costs one scan

    def refuse(token):
        raise ValueError(token)

    def finite(text):
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value

    try:
        json.loads(line, parse_constant=refuse, parse_float=finite)
    except ValueError:
        return True
    return False


def _long_line(number: int, length: int, limit: int) -> Problem:
    return Problem(number, None, f"line of {length} characters is longer than the {limit} this stream allows")


def parse_jsonl(stream: Stream, data: bytes, gzipped: bool) -> ParsedFile:
    parsed = ParsedFile()
    text = _decode(data, parsed, gzipped, stream.max_file_bytes)
    if text is None:
        return parsed
    validate = stream.adapter().validate_json
    records = parsed.records
    limit = min(stream.max_line_bytes, MAX_LINE_BYTES)
    # split on "\n" only: str.splitlines would also split on separators allowed inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line or line.isspace():
            continue
        if len(line) > limit:
            parsed.add(_long_line(number, len(line), limit))
            continue
        try:
            record = validate(line)
        except ValidationError as exc:
            _add_validation_errors(parsed, number, exc)
            continue
        if _non_finite_token(line):
            parsed.add(Problem(number, None, NON_FINITE_MESSAGE))
            continue
        if stream.check is None or _run_check(stream, record, number, parsed):
            records.append((number, line))
    if not parsed.ok:
        parsed.records = []
    return parsed


def parse_weather(stream: Stream, data: bytes, gzipped: bool, geo_folder: str | None) -> ParsedFile:
    parsed = ParsedFile()
    if geo_folder is None:
        parsed.add(Problem(None, "geo_id", f"weather files must sit in a folder named after their geo_id "
                                           f"({stream.folder}/<geo_id>/<file>.json)"))
        return parsed
    if geo_folder not in reference.known_geo_ids():
        parsed.add(Problem(None, "geo_id", f"weather folder {geo_folder!r} is not a known geo_id "
                                           f"(not in assets/reference/geo_regions.csv)"))
        return parsed
    parsed.geo_id = geo_folder
    text = _decode(data, parsed, gzipped, stream.max_file_bytes)
    if text is None:
        return parsed
    body = text.strip()
    try:
        record = stream.adapter().validate_json(body)
    except ValidationError as exc:
        _add_validation_errors(parsed, 1, exc)
        return parsed
    if _non_finite_token(body):
        parsed.add(Problem(1, None, NON_FINITE_MESSAGE))
        return parsed
    if _run_check(stream, record, 1, parsed):
        parsed.records.append((1, body))
    return parsed


def _csv_bounds(stream: Stream, text: str, parsed: ParsedFile) -> bool:
    """Lines within the stream's length and a header within its column count, checked before the CSV reader
    builds a row of a million cells; False (with the problems added) when the file is beyond them."""
    limit, start, number = stream.max_line_bytes, 0, 0
    while start < len(text):
        number += 1
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end - start > limit:
            parsed.add(_long_line(number, end - start, limit))
            if parsed.problem_count >= MAX_PROBLEMS_KEPT:
                break
        start = end + 1
    if not parsed.ok:
        return False
    if stream.max_columns is not None:
        end = text.find("\n")
        first = text if end < 0 else text[:end]
        try:
            header = next(csv.reader([first]), [])
        except csv.Error:
            return True  # the reader below names the problem
        if len(header) > stream.max_columns:
            over = header[stream.max_columns].strip()
            parsed.add(Problem(1, over if COLUMN_NAME.fullmatch(over) else None,
                               f"header has {len(header)} columns, more than the {stream.max_columns} "
                               f"{stream.folder} allows (column {stream.max_columns + 1} is the first beyond)"))
            return False
    return True


def parse_csv(stream: Stream, data: bytes) -> ParsedFile:
    parsed = ParsedFile()
    text = _decode(data, parsed, gzipped=False, limit=stream.max_file_bytes)
    if text is None:
        return parsed
    if not _csv_bounds(stream, text, parsed):
        return parsed
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        parsed.add(Problem(1, None, f"unreadable CSV header: {exc}"))
        return parsed
    if not header or all(not h.strip() for h in header):
        parsed.add(Problem(1, None, "empty file: a CSV header line is required"))
        return parsed
    header = [h.strip() for h in header]
    seen: set[str] = set()
    folded: dict[str, str] = {}
    for name in header:
        if not name:
            parsed.add(Problem(1, None, "empty column name in header"))
        elif not COLUMN_NAME.fullmatch(name):
            shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "..."
            parsed.add(Problem(1, None, f"column name {shown} is not allowed: a letter, then letters, digits or "
                                        "underscores (at most 63)"))
        elif name in seen:
            parsed.add(Problem(1, name, f"column {name!r} appears twice in the header"))
        elif name.lower() in folded:
            # the marts fold case: spend_Meta and spend_meta would be two columns for one channel
            parsed.add(Problem(1, name, f"column {name!r} differs from {folded[name.lower()]!r} only in case"))
        seen.add(name)
        folded.setdefault(name.lower(), name)
    for name in stream.required_columns:
        if name not in seen:
            parsed.add(Problem(1, name, f"missing required column {name!r}"))
    if stream.header_check is not None:
        for fld, message in stream.header_check(header):
            parsed.add(Problem(1, fld, message))
    if not parsed.ok:
        return parsed
    validate = stream.adapter().validate_python
    width = len(header)
    line = 1
    try:
        for cells in reader:
            line = reader.line_num
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if len(cells) != width:
                parsed.add(Problem(line, None, f"row has {len(cells)} cells, the header has {width}"))
                continue
            row = dict(zip(header, cells))
            try:
                record = validate(row)
            except ValidationError as exc:
                _add_validation_errors(parsed, line, exc)
                continue
            if _run_check(stream, record, line, parsed):
                parsed.records.append((line, json.dumps(row, ensure_ascii=False)))
    except csv.Error as exc:
        parsed.add(Problem(reader.line_num or line, None, f"unreadable CSV: {exc}"))
    if not parsed.ok:
        parsed.records = []
    return parsed


def parse_file(stream: Stream, data: bytes, path_in_stream: str) -> ParsedFile:
    """Validate the bytes of one file of `stream`; `path_in_stream` is relative to the stream folder."""
    gzipped = path_in_stream.endswith(".gz")
    if stream.format == "jsonl":
        return parse_jsonl(stream, data, gzipped)
    if stream.format == "json":
        parts = path_in_stream.split("/")
        return parse_weather(stream, data, gzipped, parts[0] if len(parts) > 1 else None)
    return parse_csv(stream, data)
