from app.adapters.spool import DiskSpool


def test_oldest_first_and_survives_reopening(tmp_path):
    spool = DiskSpool(tmp_path, max_bytes=10_000)
    spool.append(b"a 1\nb 2", 2)
    spool.append(b"c 3", 1)
    assert spool.pending_points() == 3
    reopened = DiskSpool(tmp_path, max_bytes=10_000)
    assert reopened.pending_points() == 3
    path, data = reopened.oldest()
    assert data == b"a 1\nb 2"
    reopened.remove(path)
    assert reopened.oldest()[1] == b"c 3"


def test_size_limit_drops_oldest_and_counts_it(tmp_path):
    spool = DiskSpool(tmp_path, max_bytes=25)
    spool.append(b"x" * 10, 4)
    spool.append(b"y" * 10, 5)
    spool.append(b"z" * 10, 6)
    assert spool.dropped_points == 4
    assert spool.oldest()[1] == b"y" * 10
    assert spool.pending_bytes() == 20


def test_half_written_files_are_discarded(tmp_path):
    (tmp_path / "000-1-000001.tmp").write_bytes(b"partial")
    spool = DiskSpool(tmp_path, max_bytes=100)
    assert spool.oldest() is None and not list(tmp_path.glob("*.tmp"))
