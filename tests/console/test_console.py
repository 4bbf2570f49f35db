"""The web console in a real browser, against a live broker, checked against the CLI.

Goal: every console page loads in Debian's headless Chromium and shows the same figures as
`sluice ... --json` (cluster health, partition counts, leaders, replicas, ISR, log offsets,
group state, members, committed offsets and lag per partition); data is shown as text, never
as markup (a record whose key is an <img onerror> tag must not create an element); the lag
chart draws once the lag task has two samples. Method: one broker process, two topics with
records (one with an HTML key and a header), a consumer group whose member consumed part of
them, committed and paused while more were produced (lagging, Stable). A screenshot of each
page goes to $SLUICE_CONSOLE_SCREENSHOTS (default: pytest's tmp dir), printed in the log.
"""

import json
import os
import subprocess

import pytest
from selenium.webdriver.common.by import By

from conftest import GROUP, HOSTILE_KEY, wait_until

# Enough for two lag refreshes (LAG_REFRESH_INTERVAL_MS = 5 s) and a margin.
LAG_SAMPLES_TIMEOUT_S = 30


def cli(broker, *args):
    """`sluice <args> --json` against the broker, parsed."""
    binary = os.environ.get("SLUICE_CLI_BIN", "target/release/sluice")
    out = subprocess.run([binary, "-b", broker.bootstrap, *args, "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode in (0, 1), out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def open_page(browser, broker, path, screenshots, name):
    browser.get(f"{broker.admin}{path}")
    assert "Sluice" in browser.title, browser.title
    shot = os.path.join(screenshots, f"{name}.png")
    browser.save_screenshot(shot)
    print(f"screenshot {path} -> {shot}")
    return browser


def cells(row):
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    directory = os.environ.get("SLUICE_CONSOLE_SCREENSHOTS") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(directory, exist_ok=True)
    print(f"console screenshots in {directory}")
    return directory


def test_cluster_page_matches_cluster_health(broker, workload, browser, screenshots):
    health = cli(broker, "cluster", "health")[-1]
    listed = cli(broker, "topic", "list")
    page = open_page(browser, broker, "/", screenshots, "cluster")
    assert page.find_element(By.ID, "health").text == ("healthy" if health["healthy"] else "unhealthy")
    shown_problems = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#problems li")]
    assert shown_problems == health["problems"]
    assert page.find_element(By.ID, "metadata-leader").text == "1"
    assert int(page.find_element(By.ID, "topic-count").text) == len(listed)
    assert int(page.find_element(By.ID, "partition-count").text) == sum(t["partitions"] for t in listed)
    brokers = page.find_elements(By.CSS_SELECTOR, "#brokers tr")[1:]
    assert [cells(row)[0] for row in brokers] == ["1 (this broker)"]


def test_topics_and_topic_pages_match_topic_describe(broker, workload, browser, screenshots):
    listed = {t["topic"]: t["partitions"] for t in cli(broker, "topic", "list")}
    page = open_page(browser, broker, "/topics", screenshots, "topics")
    rows = {cells(row)[0]: cells(row) for row in page.find_elements(By.CSS_SELECTOR, "#topics tr")[1:]}
    assert {name: int(row[1]) for name, row in rows.items()} == listed
    # Records in (the broker's counter) against the records the logs hold (the CLI's offsets).
    for topic in ("orders", "events"):
        described = cli(broker, "topic", "describe", topic)[0]
        in_logs = sum(p["log_end_offset"] - p["log_start_offset"] for p in described["partitions"])
        assert int(rows[topic][7]) == in_logs, (topic, rows[topic], in_logs)
    for topic in ("orders", "events"):
        described = cli(broker, "topic", "describe", topic)[0]
        page = open_page(browser, broker, f"/topic?name={topic}", screenshots, f"topic-{topic}")
        assert int(page.find_element(By.ID, "topic-partition-count").text) == len(described["partitions"])
        rows = page.find_elements(By.CSS_SELECTOR, "#partitions tr[data-partition]")
        assert len(rows) == len(described["partitions"])
        for row, partition in zip(rows, described["partitions"]):
            values = cells(row)
            expected = [str(partition["partition"]), str(partition["leader"]), str(partition["leader_epoch"]),
                        ", ".join(map(str, partition["replicas"])), ", ".join(map(str, partition["isr"])),
                        ", ".join(map(str, partition["offline_replicas"])),
                        str(partition["log_start_offset"]), str(partition["log_end_offset"])]
            assert values[:8] == expected, (topic, values, partition)


def test_record_browser_shows_data_as_text(broker, workload, browser, screenshots):
    described = cli(broker, "topic", "describe", "orders")[0]
    end = described["partitions"][0]["log_end_offset"]
    page = open_page(browser, broker, "/records?topic=orders&partition=0&count=5&format=json", screenshots,
                     "records-json")
    offsets = [int(row.get_attribute("data-offset")) for row in page.find_elements(By.CSS_SELECTOR, "#records tr[data-offset]")]
    assert offsets == list(range(max(0, end - 5), end))
    assert '"note": "<b>bold?</b>"' in page.find_element(By.CSS_SELECTOR, "#records td.value").text
    assert "<script>x</script>" in page.find_element(By.ID, "records").text
    assert not page.find_elements(By.CSS_SELECTOR, "#records td.value b, #records script")
    page = open_page(browser, broker, "/records?topic=events&partition=0&from=offset&offset=0&count=100",
                     screenshots, "records-text")
    assert HOSTILE_KEY in page.find_element(By.ID, "records").text
    assert not page.find_elements(By.TAG_NAME, "img"), "a key became an element"
    assert "(not UTF-8; hex)" in page.find_element(By.ID, "records").text
    page = open_page(browser, broker, "/records?topic=events&partition=0&from=offset&offset=0&count=1&format=hex",
                     screenshots, "records-hex")
    assert "00000000  6b 30" in page.find_element(By.CSS_SELECTOR, "#records td.key").text  # k0


def group_rows(page):
    return {
        (row.get_attribute("data-topic"), int(row.get_attribute("data-partition"))): row
        for row in page.find_elements(By.CSS_SELECTOR, "#offsets tr[data-topic]")
    }


def test_group_pages_match_group_describe(broker, workload, browser, screenshots):
    described = cli(broker, "group", "describe", GROUP)[0]
    assert described["state"] == "Stable" and len(described["members"]) == 1, described
    assert sum(p["lag"] for p in described["partitions"]) == 30, described
    page = open_page(browser, broker, "/groups", screenshots, "groups")
    states = {cells(row)[0]: cells(row)[1] for row in page.find_elements(By.CSS_SELECTOR, "#groups tr")[1:]}
    assert states[GROUP] == described["state"]

    def charted():
        page = open_page(browser, broker, f"/group?id={GROUP}", screenshots, "group")
        lagging = [row for (_, partition), row in group_rows(page).items()
                   if int(row.find_element(By.CSS_SELECTOR, "td.lag").text) > 0]
        seconds_known = lagging and all(row.find_element(By.CSS_SELECTOR, "td.lag-seconds").text != "—"
                                        for row in lagging)
        return page if seconds_known and page.find_elements(By.CSS_SELECTOR, "svg polyline.series") else None

    page = wait_until(charted, LAG_SAMPLES_TIMEOUT_S, "two lag refreshes (seconds known, chart drawn)", 1.0)
    assert page.find_element(By.ID, "group-state").text == described["state"]
    assert int(page.find_element(By.ID, "member-count").text) == len(described["members"])
    member = page.find_elements(By.CSS_SELECTOR, "#members tr")[1:]
    assert cells(member[0])[0] == described["members"][0]["member_id"]
    assert cells(member[0])[2] == "console-test"
    rows = group_rows(page)
    assert set(rows) == {(p["topic"], p["partition"]) for p in described["partitions"]}
    for partition in described["partitions"]:
        row = rows[(partition["topic"], partition["partition"])]
        assert row.find_element(By.CSS_SELECTOR, "td.committed").text == str(partition["committed"])
        assert row.find_element(By.CSS_SELECTOR, "td.lag").text == str(partition["lag"])
        seconds = row.find_element(By.CSS_SELECTOR, "td.lag-seconds").text
        assert (float(seconds) > 0) == (partition["lag"] > 0), (partition, seconds)
        assert cells(row)[6] == (partition["member_id"] or "—")
    open_page(browser, broker, "/group?id=nobody", screenshots, "group-unknown")
    assert "No group nobody." in browser.find_element(By.TAG_NAME, "main").text
