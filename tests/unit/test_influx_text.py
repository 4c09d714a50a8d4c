from app.adapters import influx_text as lp


def test_line_escapes_tags_and_strings_and_writes_floats():
    line = lp.line("decision", {"kind": "re route", "target": "a,b=c", "empty": ""},
                   {"reason": 'said "hi" \\ bye', "confidence": 1, "ok": True}, 123)
    assert line == ('decision,kind=re\\ route,target=a\\,b\\=c '
                    'reason="said \\"hi\\" \\\\ bye",confidence=1.0,ok=true 123')


def test_trailing_backslash_cannot_escape_the_separator():
    # influxd refuses any tag value ending in a backslash, however escaped.
    assert lp.tag("C:\\") == "C:"
    assert lp.tag("a\\b") == "a\\b"
    assert lp.tag("C:\\\\") == "C:"                          # every trailing backslash
    # Only backslashes: a tag ending in any other character keeps it.
    assert lp.line("reading", {"sensor_id": "TANK_X", "zone": "BOX"}, {"value": 1.5}, 7) == \
        "reading,sensor_id=TANK_X,zone=BOX value=1.5 7"


def test_quality_and_other_text_fields_are_escaped():
    assert lp.field_value('say "x" \\') == '"say \\"x\\" \\\\"'


def test_readings_refuse_tag_text_influxdb_cannot_store():
    from pydantic import ValidationError
    from app.models import Reading
    import pytest
    with pytest.raises(ValidationError):
        Reading(sensor_id="s", value=1.0, zone="C:\\")
    assert Reading(sensor_id="s", value=1.0, zone="a\\b").zone == "a\\b"


def test_influxql_quoting():
    assert lp.identifier('we"ird\\') == '"we\\"ird\\\\"'
    assert lp.string_literal("x' OR '1'='1") == "'x\\' OR \\'1\\'=\\'1'"
