from app.adapters import influx_text as lp


def test_line_escapes_tags_and_strings_and_writes_floats():
    line = lp.line("decision", {"kind": "re route", "target": "a,b=c", "empty": ""},
                   {"reason": 'said "hi" \\ bye', "confidence": 1, "ok": True}, 123)
    assert line == ('decision,kind=re\\ route,target=a\\,b\\=c '
                    'reason="said \\"hi\\" \\\\ bye",confidence=1.0,ok=true 123')


def test_trailing_backslash_cannot_escape_the_separator():
    assert lp.tag("C:\\") == "C:\\\\"
    assert lp.tag("a\\b") == "a\\b"


def test_influxql_quoting():
    assert lp.identifier('we"ird\\') == '"we\\"ird\\\\"'
    assert lp.string_literal("x' OR '1'='1") == "'x\\' OR \\'1\\'=\\'1'"
