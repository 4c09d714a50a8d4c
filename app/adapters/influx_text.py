"""InfluxDB's two text formats: line protocol (writes) and InfluxQL (reads).

Every identifier and value we put into either is escaped here, so a sensor
id or zone name can never change a point's shape or a query's meaning.
"""
from __future__ import annotations

import math

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ "})
# InfluxDB (1.x and 2.x parse alike) does not unescape `\\` in tags, so a
# backslash is written as it is. A tag value cannot end in one at all (influxd
# refuses the line however it is escaped): readings refuse such text, and for
# other text trailing backslashes are dropped rather than lose the point.
_TAG = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_FIELD_STRING = str.maketrans({"\\": "\\\\", '"': r"\""})


def measurement(name: str) -> str:
    return name.translate(_MEASUREMENT)


def tag(value: str) -> str:
    # Line protocol has no escape for a newline; readings refuse control
    # characters, this guards events built from other text.
    return value.replace("\n", " ").replace("\r", " ").rstrip("\\").translate(_TAG)


def field_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        # Always floats: an integer first write would fix the field as integer
        # and later floats would be refused ("field type conflict").
        value = float(value)
        return repr(value) if math.isfinite(value) else '"' + str(value) + '"'
    return '"' + str(value).translate(_FIELD_STRING) + '"'


def line(name: str, tags: dict, fields: dict, ts_ns: int) -> str:
    tag_part = "".join(f",{tag(k)}={tag(str(v))}" for k, v in sorted(tags.items()) if v not in (None, ""))
    field_part = ",".join(f"{tag(k)}={field_value(v)}" for k, v in fields.items() if v is not None)
    return f"{measurement(name)}{tag_part} {field_part} {ts_ns}"


def identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
