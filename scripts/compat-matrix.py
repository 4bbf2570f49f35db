#!/usr/bin/env python3
"""Results of the Java-client and Kafka-tools compatibility suite, and the matrix made from them.

    compat-matrix.py junit REPORTS_DIR >> RESULTS_TSV
        Appends one line per test case of Maven Surefire's XML reports (TEST-*.xml) to a
        results file.
    compat-matrix.py render RESULTS_DIR GAPS_TSV MATRIX_MD [DIFFERENCES_MD]
        Reads RESULTS_DIR/kafka.tsv and RESULTS_DIR/sluice.tsv, judges them against the known
        Sluice gaps in GAPS_TSV, writes the matrix to MATRIX_MD (with the hand-written list of
        documented differences DIFFERENCES_MD after it) and prints the verdict. Exits 1 when
        the run fails.

Results file (one per target, written by scripts/compat-java.sh): lines starting with `#` are
`# key=value` facts about the run (target, versions, date); every other line is
`suite <TAB> test <TAB> pass|fail <TAB> detail`, where suite is the test class (java) or
`tools`, and detail is the failure's first line (empty on a pass).

Known-gaps file: `suite <TAB> test <TAB> reason`; `#` lines are comments.

Verdict, per test:
  - fails on Kafka: a test bug (Kafka is the oracle) -> the run fails;
  - passes on Kafka, fails on Sluice, listed as a known gap -> "known Sluice gap", the run
    passes;
  - passes on Kafka, fails on Sluice, not listed -> a Sluice bug, the run fails;
  - passes on both but listed as a gap -> the list is stale, the run fails (remove the line);
  - present for one target only -> the run fails (a target did not run the whole suite).
"""

import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

# Longest failure detail kept in a results file and shown in the matrix, in characters.
DETAIL_CHARS_MAX = 300
TARGETS = ("kafka", "sluice")


def one_line(text):
    return " ".join((text or "").split())[:DETAIL_CHARS_MAX]


def junit(reports_dir):
    reports = sorted(Path(reports_dir).glob("TEST-*.xml"))
    if not reports:
        sys.exit(f"no TEST-*.xml in {reports_dir}: the Java suite did not run")
    for report in reports:
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            suite = case.get("classname", "").rsplit(".", 1)[-1]
            name = case.get("name", "")
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if case.find("skipped") is not None:
                # A skipped test is a test that did not run: counted as a failure, never hidden.
                print(f"{suite}\t{name}\tfail\tskipped: {one_line(case.find('skipped').get('message'))}")
            elif problem is not None:
                print(f"{suite}\t{name}\tfail\t{one_line(problem.get('message') or problem.get('type'))}")
            else:
                print(f"{suite}\t{name}\tpass\t")


def read_results(path):
    facts, results = {}, {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].strip().partition("=")
            facts[key.strip()] = value.strip()
        elif line.strip():
            suite, test, result, detail = (line.split("\t") + ["", "", "", ""])[:4]
            results[(suite, test)] = (result, detail)
    return facts, results


def read_gaps(path):
    gaps = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        suite, test, reason = (line.split("\t") + ["", "", ""])[:3]
        gaps[(suite, test)] = reason
    return gaps


def escape(text):
    return text.replace("|", "\\|")


def render(results_dir, gaps_path, matrix_path, differences_path=None):
    facts, results = {}, {}
    for target in TARGETS:
        facts[target], results[target] = read_results(Path(results_dir) / f"{target}.tsv")
    gaps = read_gaps(gaps_path)
    tests = sorted(set(results["kafka"]) | set(results["sluice"]), key=lambda t: (t[0] != "tools", t))
    rows, problems = [], []
    counts = {"pass": 0, "gap": 0, "fail": 0}
    for test in tests:
        kafka = results["kafka"].get(test)
        sluice = results["sluice"].get(test)
        name = f"{test[0]} / {test[1]}"
        if kafka is None or sluice is None:
            problems.append(f"{name}: ran on {'sluice' if kafka is None else 'kafka'} only")
            verdict = "fail"
        elif kafka[0] != "pass":
            problems.append(f"{name}: fails on Apache Kafka (a test bug): {kafka[1]}")
            verdict = "fail"
        elif sluice[0] == "pass":
            if test in gaps:
                problems.append(f"{name}: passes on Sluice but is listed in {gaps_path}: remove the line")
                verdict = "fail"
            else:
                verdict = "pass"
        elif test in gaps:
            verdict = "gap"
        else:
            problems.append(f"{name}: passes on Kafka, fails on Sluice (a Sluice bug): {sluice[1]}")
            verdict = "fail"
        counts[verdict] += 1
        kafka_cell = "—" if kafka is None else ("pass" if kafka[0] == "pass" else "**fail**")
        if sluice is None:
            sluice_cell = "—"
        elif sluice[0] == "pass":
            sluice_cell = "pass"
        elif verdict == "gap":
            sluice_cell = f"known gap: {escape(gaps[test])}"
        else:
            sluice_cell = f"**fail**: {escape(sluice[1])}"
        rows.append(f"| {escape(test[0])} | {escape(test[1])} | {kafka_cell} | {sluice_cell} |")
    for gap in sorted(set(gaps) - set(tests)):
        problems.append(f"{gap[0]} / {gap[1]}: listed in {gaps_path} but no such test ran")

    kafka_facts, sluice_facts = facts["kafka"], facts["sluice"]
    lines = [
        "# Compatibility matrix: Java client and Kafka's tools, Apache Kafka vs Sluice",
        "",
        "Generated by `scripts/compat-matrix.py` from the results files of one run of",
        "`bash scripts/compat-java.sh` (`docs/compat-results/kafka.tsv`, `docs/compat-results/sluice.tsv`);",
        "do not edit by hand. Every test runs unchanged against both brokers; Apache Kafka is the",
        "oracle. A test that fails on Kafka is a test bug; one that passes on Kafka and fails on",
        "Sluice is a Sluice bug, unless `tests/known-sluice-gaps.tsv` lists it as a known gap (a",
        "feature Sluice has not built yet), which this matrix shows with its reason.",
        "",
        f"- Apache Kafka: {kafka_facts.get('broker', '?')}, run {kafka_facts.get('date', '?')}",
        f"- Sluice: {sluice_facts.get('broker', '?')}, run {sluice_facts.get('date', '?')}",
        f"- Java client: {kafka_facts.get('client', '?')}; tools: {kafka_facts.get('tools', '?')}",
        f"- Tests: {len(tests)}; pass on both: {counts['pass']}; known Sluice gaps: {counts['gap']}; "
        f"failing: {counts['fail']}",
        "",
        "Suites: `tools` is `tests/tools/kafka-tools.sh` (each scenario a sequence of tool runs);",
        "the others are JUnit classes in `tests/java/` (test names are the methods, whose Javadoc",
        "states goal and method).",
        "",
        "| suite | test | Apache Kafka | Sluice |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    if differences_path:
        lines += ["## Documented differences", "", Path(differences_path).read_text().rstrip(), ""]
    Path(matrix_path).write_text("\n".join(lines))
    for problem in problems:
        print(f"[compat-matrix] FAIL {problem}")
    for test in tests:
        if test in gaps and results["sluice"].get(test, ("",))[0] != "pass":
            print(f"[compat-matrix] known Sluice gap: {test[0]} / {test[1]}: {gaps[test]}")
    print(f"[compat-matrix] wrote {matrix_path}; known Sluice gaps (run, failed as expected): {counts['gap']}")
    # The plain closing line CI reads: a known gap is neither a pass nor a failure of the run.
    print(f"compat-java: {counts['pass']} passed, {counts['fail']} failed, {counts['gap']} skipped")
    return 1 if counts["fail"] else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "junit":
        junit(argv[2])
        return 0
    if len(argv) in (5, 6) and argv[1] == "render":
        return render(*argv[2:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
