"""Mutation testing of the core: mutmut over the modules that decide what users see, then a table.

    python scripts/mutation.py                 # every module, from scratch (about 3,200 mutants: long)
    python scripts/mutation.py wqi controls    # some modules
    python scripts/mutation.py --report        # only the table of the last run (mutants/*.meta)
    python scripts/mutation.py --keep          # resume: only mutants not judged yet (new or changed functions)
    python scripts/mutation.py --rejudge wqi   # judge a module's survivors again after adding tests

mutmut's settings (which files, which tests) are in setup.cfg. Each mutant is
judged by the unit and in-process tests that reach the mutated function. The
table counts each module's mutants as killed, survived, timeout or other;
survivors named in docs/mutation.md (equivalent mutants, with why they cannot
change an answer) are counted apart, and every other survivor is listed.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "docs" / "mutation.md"
# Module -> (file, mutant name patterns). Of influx.py only the line builder is mutated.
MODULES = {
    "routing": ("app/services/routing.py", ["app.services.routing.*"]),
    "leaks": ("app/services/leaks.py", ["app.services.leaks.*"]),
    "leak_watch": ("app/services/leak_watch.py", ["app.services.leak_watch.*"]),
    "alerts": ("app/services/alerts.py", ["app.services.alerts.*"]),
    "thresholds": ("app/services/thresholds.py", ["app.services.thresholds.*"]),
    "wqi": ("app/services/wqi.py", ["app.services.wqi.*"]),
    "controls": ("app/services/controls.py", ["app.services.controls.*"]),
    "influx_text": ("app/adapters/influx_text.py", ["app.adapters.influx_text.*"]),
    # The records' own logic: an alarm's states, the reading's JSON between instances.
    "records": ("app/domain/records.py", ["app.domain.records.*"]),
    "influx_lines": ("app/adapters/influx.py", ["app.adapters.influx.xǁInfluxHistoryǁwrite_readings__*",
                                                "app.adapters.influx.xǁInfluxHistoryǁwrite_event__*"]),
}
# mutmut's exit codes (mutmut.__main__.status_by_exit_code).
STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", None: "not checked", 5: "no tests", 33: "no tests"}
# Children mutmut forks at once (MUTATION_CHILDREN overrides): this machine's cores are shared.
CHILDREN = int(os.environ.get("MUTATION_CHILDREN", "2"))
# The heading of docs/mutation.md's part that lists equivalent mutants; the rest of the
# file (the open survivors, notes) may name mutants without making them equivalent.
EQUIVALENTS_HEADING = "## Equivalent mutants"


def documented_equivalents() -> set[str]:
    """Mutant names in the table rows of docs/mutation.md's equivalents part (in backticks)."""
    if not EQUIVALENTS.exists():
        return set()
    text = EQUIVALENTS.read_text()
    start = text.find(EQUIVALENTS_HEADING)
    if start < 0:
        return set()
    end = text.find("\n## ", start + len(EQUIVALENTS_HEADING))
    part = text[start:end if end > 0 else len(text)]
    names = set()
    for row in (line for line in part.splitlines() if line.startswith("|")):
        # A row may name siblings of its first mutant by number alone: `..._mutmut_7`, `_9`.
        prefix = None
        for token in re.findall(r"`([^`\s]+)`", row):
            full = re.fullmatch(r"(app\.[^`\s]+__mutmut_)\d+", token)
            if full:
                prefix = full.group(1)
                names.add(token)
            elif prefix and re.fullmatch(r"_\d+", token):
                names.add(prefix + token[1:])
    return names


def results(module: str) -> dict[str, str]:
    path, patterns = MODULES[module]
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: STATUS.get(code, "other") for name, code in sorted(codes.items())
            if any(fnmatch.fnmatchcase(name, p) for p in patterns)}


def forget_survivors(module: str) -> list[str]:
    """Mark the module's survivors unjudged, so the next run judges them again; their names."""
    meta = ROOT / "mutants" / (MODULES[module][0] + ".meta")
    names = [n for n, status in results(module).items() if status in ("survived", "no tests")]
    if names:
        data = json.loads(meta.read_text())
        data["exit_code_by_key"].update({n: None for n in names})
        meta.write_text(json.dumps(data, indent=4))
    return names


def report(modules: list[str]) -> int:
    equivalent = documented_equivalents()
    print("| module | mutants | killed | timeout | survived: equivalent | survived: other "
          "| no test reaches it | not judged |")
    print("|---|---|---|---|---|---|---|---|")
    undocumented, pending = [], []
    for module in modules:
        found = results(module)
        counts = Counter(found.values())
        survivors = [n for n, s in found.items() if s in ("survived", "no tests")]
        eq = [n for n in survivors if n in equivalent]
        undocumented += [n for n in survivors if n not in equivalent]
        unjudged = len(found) - counts["killed"] - counts["timeout"] - len(survivors)
        print(f"| {module} | {len(found)} | {counts['killed']} | {counts['timeout']} | {len(eq)} "
              f"| {counts['survived'] - len([n for n in eq if found[n] == 'survived'])} | {counts['no tests']} "
              f"| {unjudged} |")
        if unjudged:
            pending.append(f"{module}: {unjudged} not judged ({', '.join(sorted(set(found.values())))})")
    for line in pending:
        print(line)
    if undocumented:
        print("\nSurvivors not documented as equivalent (`mutmut show NAME` shows one):")
        for name in undocumented:
            print("  ", name)
    return 1 if undocumented else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(MODULES))
    parser.add_argument("--report", action="store_true", help="only print the table of the last run")
    parser.add_argument("--keep", action="store_true",
                        help="resume the last run: judge only mutants with no result yet, of every module")
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the last run's survivors again (after new tests), keeping what was killed")
    args = parser.parse_args()
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"no module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if not args.report:
        if not (args.keep or args.rejudge):
            shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        else:
            # Tests or functions changed since the last run: map tests to functions again
            # (mutmut otherwise keeps its old map, and a new function has no test in it).
            (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        patterns = [p for m in modules for p in MODULES[m][1]]
        if args.keep:
            # mutmut judges again every mutant a name or pattern matches, killed ones too;
            # without names it judges only those with no result yet (of every module).
            patterns = []
        if args.rejudge:
            patterns = [name for m in modules for name in forget_survivors(m)]
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(CHILDREN), *patterns],
                       cwd=ROOT, check=False)
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())
