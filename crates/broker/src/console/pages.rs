//! The console's pages as pure functions from plain data to HTML: what [`super::gather`] read
//! from the broker goes in, a whole page comes out. Every string from data is escaped here.

use std::fmt::Write as _;

use super::chart::line_chart;
use super::html::{bytes, escape, link, page, timestamp, value, ValueFormat};
use super::{
    CONSOLE_HEADERS_SHOWN_MAX, CONSOLE_PROBLEMS_SHOWN_MAX, CONSOLE_RECORDS_PER_PAGE_MAX, CONSOLE_ROWS_PER_PAGE,
};
use crate::coordinator::lag_history::LagSample;
use crate::metrics::{TopicRates, TopicTotals};

/// One registered broker.
#[derive(Debug, Clone)]
pub struct BrokerRow {
    pub id: i32,
    pub address: String,
    pub rack: Option<String>,
    pub fenced: bool,
    pub epoch: i64,
}

/// The front page.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub node_id: i32,
    pub cluster_id: String,
    pub metadata_leader: Option<u64>,
    pub raft_term: u64,
    pub applied_index: u64,
    pub brokers: Vec<BrokerRow>,
    pub topics: usize,
    pub partitions: usize,
    pub hosted: usize,
    pub led_here: usize,
    /// `cluster_health::health_problems`: empty when healthy.
    pub problems: Vec<String>,
}

/// One topic of the list.
#[derive(Debug, Clone)]
pub struct TopicRow {
    pub name: String,
    pub partitions: usize,
    pub replication_factor: u16,
    pub under_replicated: usize,
    pub without_leader: usize,
    /// Partitions hosted here, and the bytes of their logs.
    pub hosted: usize,
    pub hosted_bytes: u64,
    pub totals: TopicTotals,
    pub rates: Option<TopicRates>,
}

/// One partition of a topic; `log` when this broker hosts it.
#[derive(Debug, Clone)]
pub struct PartitionRow {
    pub partition: i32,
    pub leader: Option<i32>,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub log: Option<LogRow>,
}

/// A hosted partition's log.
#[derive(Debug, Clone, Copy)]
pub struct LogRow {
    pub start: i64,
    pub high_watermark: i64,
    pub end: i64,
    pub size_bytes: u64,
}

/// One topic's page.
#[derive(Debug, Clone)]
pub struct Topic {
    pub node_id: i32,
    pub name: String,
    pub topic_id: String,
    pub configs: Vec<(String, String)>,
    pub partition_count: usize,
    /// The page's partitions (at most [`CONSOLE_ROWS_PER_PAGE`]).
    pub rows: Vec<PartitionRow>,
    pub page: usize,
}

/// One decoded record.
#[derive(Debug, Clone)]
pub struct RecordRow {
    pub offset: i64,
    pub timestamp: i64,
    pub log_append_time: bool,
    pub key: Option<bytes::Bytes>,
    pub value: Option<bytes::Bytes>,
    pub headers: Vec<(String, Option<bytes::Bytes>)>,
}

/// What the record browser was asked.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    pub topic: String,
    pub partition: i32,
    /// `latest`, `offset` or `time`.
    pub from: String,
    pub offset: Option<i64>,
    pub time: Option<String>,
    pub count: usize,
    pub format: ValueFormat,
}

/// The record browser's page: the records, or why there are none.
#[derive(Debug, Clone)]
pub struct Records {
    pub node_id: i32,
    pub query: RecordQuery,
    pub log_start: i64,
    pub high_watermark: i64,
    pub records: Vec<RecordRow>,
    /// Why nothing could be read (not hosted here, not the leader, bad parameter).
    pub problem: Option<String>,
}

/// One group of the list.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub lag_sum: Option<i64>,
    pub max_lag_seconds: Option<f64>,
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<(String, i32)>,
}

/// One committed offset of a group and its lag.
#[derive(Debug, Clone)]
pub struct GroupPartitionRow {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub high_watermark: Option<i64>,
    pub lag_records: Option<i64>,
    pub lag_seconds: Option<f64>,
    pub member: Option<String>,
}

/// One group's page.
#[derive(Debug, Clone)]
pub struct Group {
    pub node_id: i32,
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberRow>,
    /// The page's committed partitions (at most [`CONSOLE_ROWS_PER_PAGE`]) of `partition_count`.
    pub partitions: Vec<GroupPartitionRow>,
    pub partition_count: usize,
    pub page: usize,
    pub samples: Vec<LagSample>,
    pub refreshed_at_ms: i64,
    pub now_ms: i64,
}

fn list(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "—".to_string(), |v| v.to_string())
}

/// Previous / next links of a paged list of `total` rows.
fn pager(path: &str, params: &[(&str, String)], page: usize, total: usize) -> String {
    let pages = total.div_ceil(CONSOLE_ROWS_PER_PAGE).max(1);
    if pages == 1 {
        return String::new();
    }
    let at = |page: usize| {
        let mut all = params.to_vec();
        all.push(("page", page.to_string()));
        all
    };
    let mut html = format!("<p class=\"pager\">page {} of {pages} ", page + 1);
    if page > 0 {
        html.push_str(&link(path, &at(page - 1), "← previous"));
        html.push(' ');
    }
    if page + 1 < pages {
        html.push_str(&link(path, &at(page + 1), "next →"));
    }
    html.push_str("</p>");
    html
}

/// The front page: the cluster's health verdict (the rules of `sluice cluster health`),
/// metadata leader and brokers.
pub fn cluster(data: &Cluster) -> String {
    let mut body = String::new();
    let healthy = data.problems.is_empty();
    let _ = write!(
        body,
        "<p id=\"health\" class=\"{}\">{}</p>",
        if healthy { "healthy" } else { "unhealthy" },
        if healthy { "healthy" } else { "unhealthy" }
    );
    if !healthy {
        body.push_str("<ul id=\"problems\">");
        for problem in data.problems.iter().take(CONSOLE_PROBLEMS_SHOWN_MAX) {
            let _ = write!(body, "<li>{}</li>", escape(problem));
        }
        if data.problems.len() > CONSOLE_PROBLEMS_SHOWN_MAX {
            let _ = write!(body, "<li>… and {} more</li>", data.problems.len() - CONSOLE_PROBLEMS_SHOWN_MAX);
        }
        body.push_str("</ul>");
    }
    let _ = write!(
        body,
        "<table class=\"facts\"><tr><th>cluster id</th><td id=\"cluster-id\">{}</td></tr>\
         <tr><th>metadata leader (controller)</th><td id=\"metadata-leader\">{}</td></tr>\
         <tr><th>metadata Raft term</th><td>{}</td></tr><tr><th>applied metadata index</th><td>{}</td></tr>\
         <tr><th>topics</th><td id=\"topic-count\">{}</td></tr><tr><th>partitions</th><td id=\"partition-count\">{}</td></tr>\
         <tr><th>hosted on this broker</th><td>{} ({} led here)</td></tr></table>",
        escape(&data.cluster_id),
        optional(data.metadata_leader),
        data.raft_term,
        data.applied_index,
        data.topics,
        data.partitions,
        data.hosted,
        data.led_here
    );
    body.push_str("<h2>Brokers</h2><table id=\"brokers\"><tr><th>id</th><th>address</th><th>rack</th><th>state</th><th>epoch</th></tr>");
    for broker in &data.brokers {
        let _ = write!(
            body,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            broker.id,
            if broker.id == data.node_id { " (this broker)" } else { "" },
            escape(&broker.address),
            escape(broker.rack.as_deref().unwrap_or("—")),
            if broker.fenced { "fenced" } else { "live" },
            broker.epoch
        );
    }
    body.push_str("</table>");
    page(data.node_id, "Cluster", &body)
}

/// The topics list, one page of [`CONSOLE_ROWS_PER_PAGE`] (`rows` is that page, `total` all).
pub fn topics(node_id: i32, rows: &[TopicRow], page_index: usize, total: usize) -> String {
    let mut body = format!("<p>{total} topics. Sizes are of the partitions hosted here; counters are this broker's since it started (records and bytes producers appended, bytes sent to consumers); rates per second are over the last lag refresh interval (5 s).</p>");
    body.push_str(&pager("/topics", &[], page_index, total));
    body.push_str(
        "<table id=\"topics\"><tr><th>topic</th><th>partitions</th><th>replication</th><th>under-replicated</th>\
         <th>without leader</th><th>hosted here</th><th>size here</th><th>records in</th><th>records in/s</th>\
         <th>bytes in</th><th>bytes in/s</th><th>bytes out</th><th>bytes out/s</th></tr>",
    );
    for row in rows {
        let rate = |pick: fn(&TopicRates) -> f64| {
            row.rates.as_ref().map_or_else(|| "—".to_string(), |r| format!("{:.1}", pick(r)))
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"partitions\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"records-in\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            link("/topic", &[("name", row.name.clone())], &row.name),
            row.partitions,
            row.replication_factor,
            row.under_replicated,
            row.without_leader,
            row.hosted,
            bytes(row.hosted_bytes),
            row.totals.records_in,
            rate(|r| r.records_in),
            bytes(row.totals.bytes_in),
            rate(|r| r.bytes_in),
            bytes(row.totals.bytes_out),
            rate(|r| r.bytes_out),
        );
    }
    body.push_str("</table>");
    page(node_id, "Topics", &body)
}

/// One topic: its partitions (paged), their leaders, replicas, ISR and logs.
pub fn topic(data: &Topic) -> String {
    let mut body = format!(
        "<p>topic id {} · <span id=\"topic-partition-count\">{}</span> partitions</p>",
        escape(&data.topic_id),
        data.partition_count
    );
    if !data.configs.is_empty() {
        body.push_str("<details><summary>configuration overrides</summary><table>");
        for (name, value) in &data.configs {
            let _ = write!(body, "<tr><th>{}</th><td>{}</td></tr>", escape(name), escape(value));
        }
        body.push_str("</table></details>");
    }
    body.push_str(&pager("/topic", &[("name", data.name.clone())], data.page, data.partition_count));
    body.push_str(
        "<table id=\"partitions\"><tr><th>partition</th><th>leader</th><th>leader epoch</th><th>replicas</th><th>ISR</th>\
         <th>offline</th><th>log start</th><th>high watermark</th><th>log end</th><th>size</th><th>records</th></tr>",
    );
    for row in &data.rows {
        let log = row.log.as_ref();
        let _ = write!(
            body,
            "<tr data-partition=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"log-start\">{}</td><td class=\"high-watermark\">{}</td><td class=\"log-end\">{}</td><td>{}</td><td>{}</td></tr>",
            row.partition,
            row.partition,
            optional(row.leader),
            row.leader_epoch,
            list(&row.replicas),
            list(&row.isr),
            list(&row.offline),
            optional(log.map(|l| l.start)),
            optional(log.map(|l| l.high_watermark)),
            optional(log.map(|l| l.end)),
            log.map_or_else(|| "not hosted here".to_string(), |l| bytes(l.size_bytes)),
            link("/records", &[("topic", data.name.clone()), ("partition", row.partition.to_string())], "browse"),
        );
    }
    body.push_str("</table>");
    page(data.node_id, &format!("Topic {}", data.name), &body)
}

/// The record browser: a form for where to start, then the records.
pub fn records(data: &Records) -> String {
    let query = &data.query;
    let mut body = String::new();
    let checked = |from: &str| if query.from == from { " checked" } else { "" };
    let selected = |format: ValueFormat| if query.format == format { " selected" } else { "" };
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/records\" class=\"browse\">\
         <input type=\"hidden\" name=\"topic\" value=\"{}\"><input type=\"hidden\" name=\"partition\" value=\"{}\">\
         <label><input type=\"radio\" name=\"from\" value=\"latest\"{}> latest</label> \
         <label><input type=\"radio\" name=\"from\" value=\"offset\"{}> from offset <input name=\"offset\" size=\"10\" value=\"{}\"></label> \
         <label><input type=\"radio\" name=\"from\" value=\"time\"{}> from time (UTC) <input name=\"time\" type=\"datetime-local\" step=\"1\" value=\"{}\"></label> \
         <label>records <input name=\"count\" size=\"4\" value=\"{}\"></label> (at most {CONSOLE_RECORDS_PER_PAGE_MAX}) \
         <label>show as <select name=\"format\"><option value=\"text\"{}>text</option><option value=\"json\"{}>JSON</option>\
         <option value=\"hex\"{}>hex</option></select></label> <button>show</button></form>",
        escape(&query.topic),
        query.partition,
        checked("latest"),
        checked("offset"),
        optional(query.offset).replace('—', ""),
        checked("time"),
        escape(query.time.as_deref().unwrap_or("")),
        query.count,
        selected(ValueFormat::Text),
        selected(ValueFormat::Json),
        selected(ValueFormat::Hex),
    );
    if let Some(problem) = &data.problem {
        let _ = write!(body, "<p class=\"problem\">{}</p>", escape(problem));
        return page(data.node_id, &format!("Records of {}-{}", query.topic, query.partition), &body);
    }
    let _ = write!(
        body,
        "<p>log start <span id=\"log-start\">{}</span>, high watermark <span id=\"high-watermark\">{}</span>; \
         {} records shown.</p>",
        data.log_start,
        data.high_watermark,
        data.records.len()
    );
    body.push_str(
        "<table id=\"records\"><tr><th>offset</th><th>timestamp</th><th>key</th><th>value</th><th>headers</th></tr>",
    );
    for record in &data.records {
        let mut headers = String::new();
        for (name, header_value) in record.headers.iter().take(CONSOLE_HEADERS_SHOWN_MAX) {
            let _ = write!(
                headers,
                "<div class=\"header\"><b>{}</b>{}</div>",
                escape(name),
                value(header_value.as_deref(), query.format)
            );
        }
        if record.headers.len() > CONSOLE_HEADERS_SHOWN_MAX {
            let _ = write!(
                headers,
                "<span class=\"truncated\">… and {} more headers</span>",
                record.headers.len() - CONSOLE_HEADERS_SHOWN_MAX
            );
        }
        let _ = write!(
            body,
            "<tr data-offset=\"{}\"><td>{}</td><td>{}{}</td><td class=\"key\">{}</td><td class=\"value\">{}</td><td>{}</td></tr>",
            record.offset,
            record.offset,
            timestamp(record.timestamp),
            if record.log_append_time { " (log append time)" } else { "" },
            value(record.key.as_deref(), query.format),
            value(record.value.as_deref(), query.format),
            headers
        );
    }
    body.push_str("</table>");
    if let Some(last) = data.records.last() {
        if last.offset + 1 < data.high_watermark {
            let next = [
                ("topic", query.topic.clone()),
                ("partition", query.partition.to_string()),
                ("from", "offset".to_string()),
                ("offset", (last.offset + 1).to_string()),
                ("count", query.count.to_string()),
                ("format", query.format.name().to_string()),
            ];
            let _ = write!(body, "<p class=\"pager\">{}</p>", link("/records", &next, "next records →"));
        }
    }
    page(data.node_id, &format!("Records of {}-{}", query.topic, query.partition), &body)
}

/// The groups coordinated here (paged).
pub fn groups(node_id: i32, rows: &[GroupRow], page_index: usize, total: usize) -> String {
    let mut body = format!("<p>{total} groups coordinated by this broker. Lag as of the last lag refresh.</p>");
    body.push_str(&pager("/groups", &[], page_index, total));
    body.push_str("<table id=\"groups\"><tr><th>group</th><th>state</th><th>protocol type</th><th>lag (records, sum)</th><th>lag (seconds, max)</th></tr>");
    for row in rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"state\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            link("/group", &[("id", row.group_id.clone())], &row.group_id),
            escape(&row.state),
            escape(&row.protocol_type),
            optional(row.lag_sum),
            optional(row.max_lag_seconds.map(|s| format!("{s:.1}"))),
        );
    }
    body.push_str("</table>");
    page(node_id, "Consumer groups", &body)
}

/// One group: state, members and assignments, committed offsets with lag, lag chart.
pub fn group(data: &Group) -> String {
    let mut body = format!(
        "<table class=\"facts\"><tr><th>state</th><td id=\"group-state\">{}</td></tr>\
         <tr><th>protocol type</th><td>{}</td></tr><tr><th>protocol</th><td>{}</td></tr>\
         <tr><th>members</th><td id=\"member-count\">{}</td></tr></table>",
        escape(&data.state),
        escape(&data.protocol_type),
        escape(&data.protocol),
        data.members.len()
    );
    let records: Vec<(i64, f64)> = data.samples.iter().map(|s| (s.at_ms, s.sum_records as f64)).collect();
    let seconds: Vec<(i64, f64)> = data.samples.iter().filter_map(|s| Some((s.at_ms, s.max_seconds?))).collect();
    body.push_str("<div class=\"charts\">");
    body.push_str(&line_chart("lag, records (sum over partitions)", "records", &records, data.now_ms));
    body.push_str(&line_chart("lag, seconds (oldest unconsumed record)", "s", &seconds, data.now_ms));
    body.push_str("</div>");
    body.push_str("<h2>Members</h2><table id=\"members\"><tr><th>member id</th><th>instance id</th><th>client id</th><th>host</th><th>assignment</th></tr>");
    for member in &data.members {
        let assignment: Vec<String> = member.assignment.iter().map(|(t, p)| format!("{t}-{p}")).collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&member.member_id),
            escape(member.instance_id.as_deref().unwrap_or("—")),
            escape(&member.client_id),
            escape(&member.host),
            escape(&assignment.join(", "))
        );
    }
    body.push_str("</table>");
    let refreshed = if data.refreshed_at_ms > 0 {
        format!("{:.0} s ago", (data.now_ms - data.refreshed_at_ms).max(0) as f64 / 1000.0)
    } else {
        "not yet".to_string()
    };
    let _ = write!(
        body,
        "<h2>Offsets and lag</h2><p>Lag in records: the partition's high watermark now (led here) or at the last \
         lag refresh ({refreshed}), minus the committed offset. Lag in seconds: age of the first unconsumed record at the last refresh.</p>"
    );
    body.push_str(&pager("/group", &[("id", data.group_id.clone())], data.page, data.partition_count));
    body.push_str("<table id=\"offsets\"><tr><th>topic</th><th>partition</th><th>committed</th><th>high watermark</th><th>lag (records)</th><th>lag (seconds)</th><th>member</th></tr>");
    for row in &data.partitions {
        let _ = write!(
            body,
            "<tr data-topic=\"{}\" data-partition=\"{}\"><td>{}</td><td>{}</td><td class=\"committed\">{}</td><td>{}</td>\
             <td class=\"lag\">{}</td><td class=\"lag-seconds\">{}</td><td>{}</td></tr>",
            escape(&row.topic),
            row.partition,
            link("/topic", &[("name", row.topic.clone())], &row.topic),
            row.partition,
            row.committed,
            optional(row.high_watermark),
            optional(row.lag_records),
            optional(row.lag_seconds.map(|s| format!("{s:.1}"))),
            escape(row.member.as_deref().unwrap_or("—")),
        );
    }
    body.push_str("</table>");
    page(data.node_id, &format!("Group {}", data.group_id), &body)
}

/// A page that says only `message` (a topic or group not found, a bad parameter).
pub fn message(node_id: i32, title: &str, message: &str) -> String {
    page(node_id, title, &format!("<p class=\"problem\">{}</p>", escape(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert('x')</script>\"&";

    fn assert_escaped(html: &str) {
        assert!(!html.contains("<script>alert"), "raw markup from data in {html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"), "{html}");
    }

    // Goal: nothing that comes from data — keys, values, headers, group and member ids, client
    // ids, hosts, states, config values, problems — reaches a page unescaped.
    #[test]
    fn data_is_escaped_on_every_page() {
        let hostile = || bytes::Bytes::from_static(HOSTILE.as_bytes());
        let records_page = records(&Records {
            node_id: 1,
            query: RecordQuery {
                topic: "t".to_string(),
                partition: 0,
                from: "latest".to_string(),
                offset: None,
                time: Some(HOSTILE.to_string()),
                count: 1,
                format: ValueFormat::Text,
            },
            log_start: 0,
            high_watermark: 1,
            records: vec![RecordRow {
                offset: 0,
                timestamp: 0,
                log_append_time: false,
                key: Some(hostile()),
                value: Some(hostile()),
                headers: vec![(HOSTILE.to_string(), Some(hostile()))],
            }],
            problem: None,
        });
        assert_escaped(&records_page);
        for format in [ValueFormat::Json, ValueFormat::Hex] {
            let html = value(Some(HOSTILE.as_bytes()), format);
            assert!(!html.contains("<script"), "{html}");
        }
        let group_page = group(&Group {
            node_id: 1,
            group_id: HOSTILE.to_string(),
            state: HOSTILE.to_string(),
            protocol_type: HOSTILE.to_string(),
            protocol: HOSTILE.to_string(),
            members: vec![MemberRow {
                member_id: HOSTILE.to_string(),
                instance_id: Some(HOSTILE.to_string()),
                client_id: HOSTILE.to_string(),
                host: HOSTILE.to_string(),
                assignment: vec![(HOSTILE.to_string(), 0)],
            }],
            partitions: vec![GroupPartitionRow {
                topic: HOSTILE.to_string(),
                partition: 0,
                committed: 1,
                high_watermark: Some(2),
                lag_records: Some(1),
                lag_seconds: None,
                member: Some(HOSTILE.to_string()),
            }],
            partition_count: 1,
            page: 0,
            samples: Vec::new(),
            refreshed_at_ms: 0,
            now_ms: 0,
        });
        assert_escaped(&group_page);
        let list = groups(
            1,
            &[GroupRow {
                group_id: HOSTILE.to_string(),
                state: HOSTILE.to_string(),
                protocol_type: HOSTILE.to_string(),
                lag_sum: None,
                max_lag_seconds: None,
            }],
            0,
            1,
        );
        assert_escaped(&list);
        assert!(list.contains("/group?id=%3Cscript%3E"), "group id in a link is percent-encoded");
        let topic_page = topic(&Topic {
            node_id: 1,
            name: "t".to_string(),
            topic_id: "id".to_string(),
            configs: vec![("retention.ms".to_string(), HOSTILE.to_string())],
            partition_count: 0,
            rows: Vec::new(),
            page: 0,
        });
        assert_escaped(&topic_page);
        let front = cluster(&Cluster {
            node_id: 1,
            cluster_id: HOSTILE.to_string(),
            metadata_leader: None,
            raft_term: 0,
            applied_index: 0,
            brokers: vec![BrokerRow {
                id: 1,
                address: HOSTILE.to_string(),
                rack: Some(HOSTILE.to_string()),
                fenced: false,
                epoch: 0,
            }],
            topics: 0,
            partitions: 0,
            hosted: 0,
            led_here: 0,
            problems: vec![HOSTILE.to_string()],
        });
        assert_escaped(&front);
        assert!(front.contains("class=\"unhealthy\""));
    }

    #[test]
    fn headers_of_a_record_are_bounded() {
        let headers = (0..CONSOLE_HEADERS_SHOWN_MAX + 3).map(|i| (format!("h{i}"), None)).collect();
        let html = records(&Records {
            node_id: 1,
            query: RecordQuery {
                topic: "t".to_string(),
                partition: 0,
                from: "latest".to_string(),
                offset: None,
                time: None,
                count: 1,
                format: ValueFormat::Text,
            },
            log_start: 0,
            high_watermark: 1,
            records: vec![RecordRow {
                offset: 0,
                timestamp: 0,
                log_append_time: false,
                key: None,
                value: None,
                headers,
            }],
            problem: None,
        });
        assert_eq!(html.matches("class=\"header\"").count(), CONSOLE_HEADERS_SHOWN_MAX);
        assert!(html.contains("… and 3 more headers"), "{html}");
    }

    #[test]
    fn long_lists_are_paged_and_problems_bounded() {
        let html = pager("/topic", &[("name", "t".to_string())], 1, 3 * CONSOLE_ROWS_PER_PAGE);
        assert!(html.contains("page 2 of 3") && html.contains("page=0") && html.contains("page=2"), "{html}");
        assert_eq!(pager("/topics", &[], 0, CONSOLE_ROWS_PER_PAGE), "");
        let problems: Vec<String> = (0..CONSOLE_PROBLEMS_SHOWN_MAX + 7).map(|i| format!("p{i}")).collect();
        let front = cluster(&Cluster {
            node_id: 1,
            cluster_id: "c".to_string(),
            metadata_leader: Some(1),
            raft_term: 1,
            applied_index: 1,
            brokers: Vec::new(),
            topics: 0,
            partitions: 0,
            hosted: 0,
            led_here: 0,
            problems,
        });
        assert!(front.contains("… and 7 more") && !front.contains(&format!("p{}<", CONSOLE_PROBLEMS_SHOWN_MAX)));
    }
}
