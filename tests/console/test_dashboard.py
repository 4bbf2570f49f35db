"""The Grafana dashboard cannot drift from the metrics: every `sluice_*` name in its PromQL
expressions must be a series name a live broker exposes on /metrics.

Method: a broker process; /metrics is read and each family's `# TYPE` line gives the series
names it can have (a counter `x`: `x_total`; a histogram `x`: `x_bucket`, `x_count`, `x_sum`;
a gauge `x`: `x`). Families without series are left out by the exposition, so the
session's workload (conftest.py: topics, records, a lagging group, a refused produce) runs first. The
dashboard's expressions are scanned for `sluice_` identifiers. A renamed metric or a typo in
the dashboard fails here.
"""

import json
import os
import re

from conftest import wait_until

DASHBOARD = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "grafana", "sluice-dashboard.json")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


def exposed_names(metrics_text):
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split()
            assert kind in SUFFIXES, f"unexpected metric type in {line!r}"
            names.update(family + suffix for suffix in SUFFIXES[kind])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def dashboard_names():
    with open(DASHBOARD) as file:
        dashboard = json.load(file)
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert expressions, "the dashboard has no queries"
    return {name for expr in expressions for name in re.findall(r"\bsluice_[a-z0-9_]+", expr)}, dashboard


def test_every_dashboard_metric_is_exposed(broker, workload):
    # The lag families appear at the first lag refresh after the group's commit (5 s at most).
    exposed = wait_until(lambda: (names := exposed_names(broker.get("/metrics")))
                         and "sluice_consumer_group_lag_sum_records" in names and names, 15, "the lag metrics")
    assert "sluice_requests_total" in exposed and "sluice_request_duration_seconds_bucket" in exposed
    used, dashboard = dashboard_names()
    missing = sorted(used - exposed)
    assert not missing, f"the dashboard uses metrics /metrics does not expose: {missing}"
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("records in", "latency", "lag", "replica health", "disk"):
        assert topic in titles, f"no {topic} panel"


def test_a_misspelt_name_would_be_caught():
    exposed = exposed_names("# TYPE sluice_x counter\nsluice_x_total 1\n# TYPE sluice_h histogram\n")
    assert exposed == {"sluice_x_total", "sluice_h_bucket", "sluice_h_count", "sluice_h_sum"}
    assert "sluice_x" not in exposed, "a counter's family name alone is not a series"
