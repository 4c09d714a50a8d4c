"""The locks match the requirements files: a requirement added or changed
without `bash scripts/lock` fails here, before a clean clone fails to import it.

Every requirement of requirements.txt is pinned in requirements.lock, and of
requirements-dev.txt (which includes it) in requirements-dev.lock, at a
version its range admits; every pin carries hashes (what `--require-hashes`
needs); the two locks agree on every package they share.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# `name==version \` then `--hash=sha256:...` lines, as uv writes them.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)[^\n]*\\\n((?:\s+--hash=\S+(?: \\)?\n)+)", re.M)
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}


def requirements(name: str) -> list[Requirement]:
    """The requirements a file names, following `-r` includes."""
    found = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            found += requirements(line[2:].strip())
        elif line:
            found.append(Requirement(line))
    return found


def pins(text: str) -> dict[str, tuple[str, int]]:
    """Package -> (version, number of hashes) in a lock's text."""
    return {canonicalize_name(m[1]): (m[2], m[3].count("--hash=")) for m in PIN.finditer(text)}


@pytest.mark.parametrize("source, lock", LOCKS.items())
def test_every_requirement_is_pinned_in_its_lock_within_its_range(source, lock):
    pinned = pins((ROOT / lock).read_text())
    wrong = {}
    for requirement in requirements(source):
        if requirement.marker and not requirement.marker.evaluate():
            continue
        version = pinned.get(canonicalize_name(requirement.name), (None, 0))[0]
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong[str(requirement)] = version
    assert wrong == {}, f"{lock} is stale for {source}: run `bash scripts/lock` ({wrong})"


@pytest.mark.parametrize("lock", LOCKS.values())
def test_every_pin_has_hashes(lock):
    text = (ROOT / lock).read_text()
    pinned = pins(text)
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)
    assert len(pinned) == len(names) > 10
    assert [name for name, (_, hashes) in pinned.items() if hashes == 0] == []


def test_the_locks_agree_on_shared_packages():
    runtime, dev = (pins((ROOT / lock).read_text()) for lock in LOCKS.values())
    assert {n: (v, dev[n][0]) for n, (v, _) in runtime.items() if dev.get(n, (v,))[0] != v} == {}
    assert set(runtime) <= set(dev)


def test_the_check_sees_a_stale_pin():
    text = "flask==3.0.3 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n    # via -r requirements.txt\n"
    assert pins(text) == {"flask": ("3.0.3", 2)}
    assert not Requirement("flask>=3.1,<4").specifier.contains(pins(text)["flask"][0])
