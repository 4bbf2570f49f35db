#!/usr/bin/env python3
"""The differential test of admin answers: Apache Kafka's against Sluice's, field by field.

    admin_diff.py ANSWERS_DIR ALLOWLIST_TSV
        Prints every difference between ANSWERS_DIR/kafka/*.json and ANSWERS_DIR/sluice/*.json
        with its verdict, and every stale allowlist line; exits 1 when a difference is not
        listed or a line is stale. scripts/compat-matrix.py render does the same through
        judge() and puts the result into docs/compatibility.md.

Answers: tests/java's AdminDiffTest writes one JSON file per scenario and target (the file name
is the scenario), already normalised (per-run ids, hosts, ports and names replaced; see its
class doc). Both targets must have recorded the same scenarios.

A difference is (scenario, path, kind): path names the field, its keys and list indices joined
by "/" (`configs/delete.retention.ms/synonyms/0`); kind is `value` (both have the field, with
other values), `kafka-only` (Kafka's answer has the field, Sluice's not) or `sluice-only`. A
field missing on one side is one difference at that field, not one per leaf below it, and so
is an answer that is an error (`{"error": ...}`) on one side only.

Allowlist (tests/known-admin-differences.tsv), one documented difference a line:
`scenario <TAB> path pattern <TAB> kind <TAB> reason`; `#` lines are comments. The pattern is a
shell-style pattern (fnmatch: `*` matches any text, "/" included) over the path. Verdict:
  - a difference that no line of its scenario and kind matches: undocumented -> the run fails;
  - a line that matches no difference: stale -> the run fails (remove or narrow it), so the
    list stays the true list of differences.
"""

import fnmatch
import json
import sys
from pathlib import Path

TARGETS = ("kafka", "sluice")
KINDS = ("value", "kafka-only", "sluice-only")
# Longest rendering of one value in a message or a table cell, in characters.
VALUE_CHARS_MAX = 80


def load(answers_dir):
    """{target: {scenario: answers}}; a target without a directory has no scenarios."""
    loaded = {}
    for target in TARGETS:
        directory = Path(answers_dir) / target
        files = sorted(directory.glob("*.json")) if directory.is_dir() else []
        loaded[target] = {path.stem: json.loads(path.read_text()) for path in files}
    return loaded


def differences(kafka, sluice, path=()):
    """Yields (path, kind, kafka value, sluice value) for every field where the answers differ."""
    if isinstance(kafka, dict) and isinstance(sluice, dict) and ("error" in kafka) != ("error" in sluice):
        # One broker refused what the other answered: one difference, not one per field.
        yield path, "value", kafka, sluice
    elif isinstance(kafka, dict) and isinstance(sluice, dict):
        for key in sorted(set(kafka) | set(sluice)):
            if key not in sluice:
                yield path + (key,), "kafka-only", kafka[key], None
            elif key not in kafka:
                yield path + (key,), "sluice-only", None, sluice[key]
            else:
                yield from differences(kafka[key], sluice[key], path + (key,))
    elif isinstance(kafka, list) and isinstance(sluice, list):
        for index in range(max(len(kafka), len(sluice))):
            if index >= len(sluice):
                yield path + (str(index),), "kafka-only", kafka[index], None
            elif index >= len(kafka):
                yield path + (str(index),), "sluice-only", None, sluice[index]
            else:
                yield from differences(kafka[index], sluice[index], path + (str(index),))
    elif kafka != sluice or type(kafka) is not type(sluice):
        yield path, "value", kafka, sluice


def read_allowlist(path):
    """[(scenario, pattern, kind, reason)], in file order; a malformed line stops the run."""
    entries = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 4 or fields[2] not in KINDS or not fields[3].strip():
            sys.exit(f"{path}:{number}: want scenario<TAB>path pattern<TAB>{'|'.join(KINDS)}<TAB>reason: {line!r}")
        entries.append(tuple(fields))
    return entries


def show(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= VALUE_CHARS_MAX else text[: VALUE_CHARS_MAX - 1] + "…"


def judge(answers_dir, allowlist_path):
    """The verdict per scenario: {scenario: {"documented": [...], "undocumented": [...],
    "stale": [...], "missing": target or None}} and, per allowlist line, the differences it
    matched: {entry: [difference, ...]}. A difference is (path, kind, kafka value, sluice value)."""
    answers = load(answers_dir)
    entries = read_allowlist(allowlist_path)
    matched = {entry: [] for entry in entries}
    verdicts = {}
    for scenario in sorted(set(answers["kafka"]) | set(answers["sluice"])):
        verdict = {"documented": [], "undocumented": [], "stale": [], "missing": None}
        verdicts[scenario] = verdict
        missing = [target for target in TARGETS if scenario not in answers[target]]
        if missing:
            verdict["missing"] = missing[0]
            continue
        for path, kind, kafka, sluice in differences(answers["kafka"][scenario], answers["sluice"][scenario]):
            joined = "/".join(path)
            difference = (joined, kind, kafka, sluice)
            listed = [e for e in entries if e[0] == scenario and e[2] == kind and fnmatch.fnmatchcase(joined, e[1])]
            for entry in listed:
                matched[entry].append(difference)
            verdict["documented" if listed else "undocumented"].append(difference)
    for entry in entries:
        if not matched[entry]:
            verdicts.setdefault(entry[0], {"documented": [], "undocumented": [], "stale": [], "missing": None})
            verdicts[entry[0]]["stale"].append(entry)
    return verdicts, matched


def problems_of(scenario, verdict):
    """One line per reason this scenario fails the run (none: it passes)."""
    problems = []
    if verdict["missing"]:
        problems.append(f"{scenario}: no answers recorded on {verdict['missing']}")
    for path, kind, kafka, sluice in verdict["undocumented"]:
        problems.append(f"{scenario}: undocumented difference at {path or '(root)'} ({kind}): "
                        f"kafka={show(kafka)} sluice={show(sluice)}")
    for entry in verdict["stale"]:
        problems.append(f"{scenario}: stale line in the allowlist, matches no difference: {entry[1]} ({entry[2]})")
    return problems


def render_section(matched, allowlist_path):
    """Markdown: every documented difference, with what it matched this run."""
    lines = [
        "### Admin answers: documented differences",
        "",
        "The differential test (`tests/java/.../AdminDiffTest.java` records each broker's answers,",
        "normalised, into `docs/compat-results/admin/TARGET/`; `scripts/admin_diff.py` compares them)",
        f"fails on any difference not listed in `tests/{Path(allowlist_path).name}`, and on a listed one",
        "that no longer occurs. This table is that list, with the number of fields each line",
        "matched in the last run and one of them.",
        "",
        "| scenario | field (pattern) | kind | fields | e.g. Kafka → Sluice | reason |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry, found in matched.items():
        scenario, pattern, kind, reason = entry
        example = "—"
        if found:
            path, _, kafka, sluice = found[0]
            example = f"`{path}`: `{show(kafka)}` → `{show(sluice)}`"
        cells = [scenario, f"`{pattern}`", kind, str(len(found)), example, reason]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    verdicts, _ = judge(argv[1], argv[2])
    if not verdicts:
        sys.exit(f"no answers in {argv[1]}: the differential test did not run")
    failed = 0
    for scenario, verdict in verdicts.items():
        for path, kind, kafka, sluice in verdict["documented"]:
            print(f"documented  {scenario}: {path} ({kind}): kafka={show(kafka)} sluice={show(sluice)}")
        for problem in problems_of(scenario, verdict):
            print(f"FAIL {problem}")
            failed += 1
    print(f"admin-diff: {len(verdicts)} scenarios, {failed} problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
