#!/usr/bin/env python3
"""Results of the compatibility suites (Java client, Kafka's tools, Go, Node.js and Python
clients) and the matrix made from them.

    compat-matrix.py junit REPORTS [SUITE] >> RESULTS_TSV
        Appends one line per test case of JUnit XML reports to a results file: REPORTS is a
        directory of Maven Surefire reports (TEST-*.xml; suite = the test class) or one XML file
        (node --test-reporter=junit); SUITE, when given, is the suite of every line.
    compat-matrix.py gotest SUITE < GO_TEST_JSON >> RESULTS_TSV
        Appends one line per test of `go test -json` output: every test and subtest that has no
        subtests of its own (test name `TestX` or `TestX/sub`), under suite SUITE.
    compat-matrix.py render [--label=NAME] RESULTS_DIR GAPS_TSV MATRIX_MD [DIFFERENCES_MD]
        Reads, per target, RESULTS_DIR/TARGET.tsv (scripts/compat-java.sh) and
        RESULTS_DIR/clients-TARGET.tsv (scripts/compat-clients.sh) when present, judges them
        against the known Sluice gaps in GAPS_TSV, writes the matrix to MATRIX_MD (with the
        hand-written list of documented differences DIFFERENCES_MD after it) and prints the
        verdict, the closing line named NAME (default compat-java). Exits 1 when the run fails.
        When RESULTS_DIR/admin/ holds the differential admin test's answers (AdminDiffTest),
        each of its scenarios is one more test, suite `admin-diff`, judged by
        scripts/admin_diff.py against known-admin-differences.tsv beside GAPS_TSV: it passes
        when every difference between Kafka's and Sluice's answers is listed there and every
        line there still matches one; the listed differences are rendered after DIFFERENCES_MD.

Results files (per target, one from each script): lines starting with `#` are `# key=value`
facts about the run (target, versions, date); every other line is
`suite <TAB> test <TAB> pass|fail <TAB> detail`, where suite is the test class (java), `tools`,
`franz-go`, `sarama`, `kafkajs` or `aiokafka`, and detail is the failure's first line (empty on a
pass).

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

import admin_diff

# Longest failure detail kept in a results file and shown in the matrix, in characters.
DETAIL_CHARS_MAX = 300
TARGETS = ("kafka", "sluice")


def one_line(text):
    return " ".join((text or "").split())[:DETAIL_CHARS_MAX]


def junit(reports, suite_name=None):
    if Path(reports).is_dir():
        files = sorted(Path(reports).glob("TEST-*.xml"))
    else:
        files = [Path(reports)] if Path(reports).is_file() else []
    if not files:
        sys.exit(f"no JUnit report at {reports}: the suite did not run")
    cases = 0
    for report in files:
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            cases += 1
            suite = suite_name or case.get("classname", "").rsplit(".", 1)[-1]
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
    if not cases:
        sys.exit(f"no test case in {reports}: the suite did not run")


def gotest(suite, stream):
    """Rows of `go test -json` events: the leaf tests' results, a failure's detail its first
    line of output that names a source line (t.Fatalf's `file_test.go:NN: message`)."""
    import json

    results, output, parents, order = {}, {}, set(), []
    for line in stream:
        line = line.strip()
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        test = event.get("Test")
        if not test:
            continue
        if "/" in test:
            parents.add(test.rsplit("/", 1)[0])
        action = event.get("Action")
        if action == "run" and test not in order:
            order.append(test)
        elif action == "output":
            output.setdefault(test, []).append(event.get("Output", ""))
        elif action in ("pass", "fail", "skip"):
            results[test] = action
    if not order:
        sys.exit("no test in the go test -json output: the Go suite did not run")
    for test in order:
        if test in parents:
            continue
        result = results.get(test)
        if result == "pass":
            print(f"{suite}\t{test}\tpass\t")
            continue
        lines = [text.strip() for text in output.get(test, [])]
        detail = next((text for text in lines if "_test.go:" in text), None) or next(
            (text for text in lines if text and not text.startswith(("=== ", "--- "))), "")
        if result is None:
            detail = f"did not finish (timeout or crash) {detail}"
        elif result == "skip":
            detail = f"skipped: {detail}"
        print(f"{suite}\t{test}\tfail\t{one_line(detail)}")


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


def render(results_dir, gaps_path, matrix_path, differences_path=None, label="compat-java"):
    facts, results, client_facts = {}, {}, {}
    for target in TARGETS:
        facts[target], results[target] = read_results(Path(results_dir) / f"{target}.tsv")
        clients = Path(results_dir) / f"clients-{target}.tsv"
        client_facts[target] = {}
        if clients.exists():
            client_facts[target], more = read_results(clients)
            results[target].update(more)
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

    # The differential admin test: one row per scenario (see the module doc).
    admin_dir = Path(results_dir) / "admin"
    admin_allowlist = Path(gaps_path).parent / "known-admin-differences.tsv"
    admin_matched = None
    if admin_dir.is_dir():
        verdicts, admin_matched = admin_diff.judge(admin_dir, admin_allowlist)
        for scenario, verdict in verdicts.items():
            scenario_problems = admin_diff.problems_of(scenario, verdict)
            problems += [f"admin-diff / {problem}" for problem in scenario_problems]
            documented = len(verdict["documented"])
            if scenario_problems:
                counts["fail"] += 1
                sluice_cell = f"**fail**: {escape(admin_diff.show(scenario_problems[0]))}"
            else:
                counts["pass"] += 1
                sluice_cell = f"{documented} fields differ, all documented" if documented else "same answers"
            rows.append(f"| admin-diff | {scenario} | recorded | {sluice_cell} |")
        tests += [("admin-diff", scenario) for scenario in verdicts]

    kafka_facts, sluice_facts = facts["kafka"], facts["sluice"]
    clients_line = []
    if client_facts["kafka"] or client_facts["sluice"]:
        ck, cs = client_facts["kafka"], client_facts["sluice"]
        clients_line = [
            f"- Go clients: {ck.get('go-client', '?')}; Node.js client: {ck.get('node-client', '?')}; "
            f"Python client: {ck.get('python-client', '?')} "
            f"(`scripts/compat-clients.sh`: Apache Kafka run {ck.get('date', '?')}; Sluice run "
            f"{cs.get('date', '?')}, {cs.get('broker', '?')})"
        ]
    lines = [
        "# Compatibility matrix: Java, Go, Node.js and Python clients and Kafka's tools, Apache Kafka vs Sluice",
        "",
        "Generated by `scripts/compat-matrix.py` from the results files of the last runs of",
        "`bash scripts/compat-java.sh` (`docs/compat-results/kafka.tsv`, `docs/compat-results/sluice.tsv`)",
        "and `bash scripts/compat-clients.sh` (`docs/compat-results/clients-kafka.tsv`,",
        "`docs/compat-results/clients-sluice.tsv`); do not edit by hand.",
        "Every test runs unchanged against both brokers; Apache Kafka is the",
        "oracle. A test that fails on Kafka is a test bug; one that passes on Kafka and fails on",
        "Sluice is a Sluice bug, unless `tests/known-sluice-gaps.tsv` lists it as a known gap (a",
        "feature Sluice has not built yet), which this matrix shows with its reason.",
        "",
        f"- Apache Kafka: {kafka_facts.get('broker', '?')}, run {kafka_facts.get('date', '?')}",
        f"- Sluice: {sluice_facts.get('broker', '?')}, run {sluice_facts.get('date', '?')}",
        f"- Java client: {kafka_facts.get('client', '?')}; tools: {kafka_facts.get('tools', '?')}",
        *clients_line,
        f"- Tests: {len(tests)}; pass on both: {counts['pass']}; known Sluice gaps: {counts['gap']}; "
        f"failing: {counts['fail']}",
        "",
        "Suites: `tools` is `tests/tools/kafka-tools.sh` (each scenario a sequence of tool runs);",
        "`franz-go` is `tests/go/` and `sarama` is `tests/go/sarama/` (Go tests, `TestX/subtest`,",
        "whose comments state goal and method); `kafkajs` is `tests/node/compat.test.js` (node:test",
        "tests); `aiokafka` is `tests/aiokafka-compat/` (pytest functions, whose docstrings state goal",
        "and method); the others are JUnit classes in `tests/java/` (test names are the methods,",
        "whose Javadoc states goal and method); `admin-diff` is the differential test of admin",
        "answers: per scenario of `AdminDiffTest`, Sluice's answers compared field by field with",
        "Kafka's (see the documented differences below).",
        "",
        "| suite | test | Apache Kafka | Sluice |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    if differences_path:
        lines += ["## Documented differences", "", Path(differences_path).read_text().rstrip(), ""]
    if admin_matched is not None:
        lines += [*admin_diff.render_section(admin_matched, admin_allowlist), ""]
    Path(matrix_path).write_text("\n".join(lines))
    for problem in problems:
        print(f"[compat-matrix] FAIL {problem}")
    for test in tests:
        if test in gaps and results["sluice"].get(test, ("",))[0] != "pass":
            print(f"[compat-matrix] known Sluice gap: {test[0]} / {test[1]}: {gaps[test]}")
    print(f"[compat-matrix] wrote {matrix_path}; known Sluice gaps (run, failed as expected): {counts['gap']}")
    # The plain closing line CI reads: a known gap is neither a pass nor a failure of the run.
    print(f"{label}: {counts['pass']} passed, {counts['fail']} failed, {counts['gap']} skipped")
    return 1 if counts["fail"] else 0


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "junit":
        junit(*argv[2:])
        return 0
    if len(argv) == 3 and argv[1] == "gotest":
        gotest(argv[2], sys.stdin)
        return 0
    label = "compat-java"
    if len(argv) > 2 and argv[2].startswith("--label="):
        label = argv[2].split("=", 1)[1]
        argv = argv[:2] + argv[3:]
    if len(argv) in (5, 6) and argv[1] == "render":
        paths = argv[2:] + [None] * (6 - len(argv))
        return render(*paths, label=label)
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
