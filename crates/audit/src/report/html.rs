//! `--html`: a self-contained report (nothing is loaded from elsewhere, and a
//! Content-Security-Policy forbids it): the run's circumstances (evaluation time, trust
//! anchors, CRLs, store, version, generation time) and the summary tables first, then a
//! stacked bar chart of verdicts over time (inline SVG, per day or per month from the Date
//! header), class and reason filters (checkboxes and one inline script, allowed by its
//! SHA-256 hash) and one table row per message with its reasons and warnings as text.
//!
//! Rows arrive before the summary is known: they are spooled to an unnamed temporary file and
//! copied after the summary when the report is finished, so memory stays bounded and the
//! document reads top-down.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::time::Duration;

use time::Date;

use super::{Finding, Outcome, Row, RunInfo, Summary, rfc3339};

/// Above this many days between the first and last Date, the chart is per month.
pub const MAX_DAILY_SPAN_DAYS: i64 = 62;

const STYLE: &str = r#"<style>
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; background: #fff; }
main { display: flex; flex-direction: column; gap: 0.8em; }
h1 { font-size: 1.4em; margin: 0 0 0.3em 0; } h2 { font-size: 1.05em; margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
.facts th { background: #f5f5f5; font-weight: normal; color: #444; }
.tables { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.notice { border-left: 4px solid #ef6c00; background: #fff3e0; padding: 0.3em 0.6em; margin: 0.4em 0; }
tr.accept td.verdict { color: #1b5e20; font-weight: bold; }
tr.reject td.verdict { color: #b71c1c; font-weight: bold; }
tr.not-calendar td.verdict, tr.not-decrypted td.verdict, tr.error td.verdict { color: #455a64; font-weight: bold; }
td.findings { min-width: 18em; max-width: 34em; }
td.findings div { overflow-wrap: break-word; margin-bottom: 0.2em; }
td.findings.warnings { min-width: 10em; }
td.source { min-width: 16em; max-width: 24em; overflow-wrap: anywhere; }
td.warnings div { color: #8d5400; }
.counts td:last-child { text-align: right; }
#filters label { margin-right: 1em; white-space: nowrap; }
.scroll { overflow-x: auto; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; }
</style>
"#;

/// The one inline script: shows a row when one of its series (reason codes, or its class) is
/// checked, and counts the rows shown. Allowed by the Content-Security-Policy through
/// [`SCRIPT_SHA256`].
const SCRIPT: &str = r#"
// Show a row when one of its series (reason codes, or its class) is checked.
function applyFilters() {
  const on = new Set();
  document.querySelectorAll('#filters input:checked').forEach(box => on.add(box.value));
  let shown = 0;
  document.querySelectorAll('#message-table tbody tr').forEach(row => {
    const visible = row.dataset.series.split(' ').some(code => on.has(code));
    row.style.display = visible ? '' : 'none';
    if (visible) shown++;
  });
  document.getElementById('shown').textContent = shown;
}
document.querySelectorAll('#filters input').forEach(box => box.addEventListener('change', applyFilters));
applyFilters();
"#;

/// Base64 of the SHA-256 of `SCRIPT` (CSP Level 2 hash source). There is no SHA-256 outside
/// OpenSSL in this crate, so it is written here; tests/audit.rs recomputes it with
/// `openssl dgst` from the served report, and a browser refuses to run a script whose hash
/// differs (tests/report_screenshot.rs sees the row count the script writes).
pub const SCRIPT_SHA256: &str = "e2/6W0z8RgdNchgPBDE4SKhmwVYfRGAqiE2kQS9KqqA=";

/// The Content-Security-Policy: nothing is fetched, no plugin, no form, no base URL; inline
/// styles (the chart swatches) and the one script, by hash.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
         script-src 'sha256-{SCRIPT_SHA256}'; base-uri 'none'; form-action 'none'"
    )
}

/// The header row of the message table.
const MESSAGE_HEADER: &str = "<thead><tr><th>#</th><th>source</th><th>date</th><th>from</th><th>message-id</th><th>verdict</th><th>event state</th><th>reasons</th><th>warnings</th><th>signers (verified)</th><th>claimed, not verified</th><th>methods</th></tr></thead>";

/// Colours of the chart series: the classes are fixed, reasons cycle through the rest.
const ACCEPT_COLOUR: &str = "#2e7d32";
const ERROR_COLOUR: &str = "#757575";
const NOT_CALENDAR_COLOUR: &str = "#b0bec5";
const NOT_DECRYPTED_COLOUR: &str = "#546e7a";
const REASON_COLOURS: [&str; 10] = [
    "#c62828", "#ef6c00", "#6a1b9a", "#1565c0", "#ad1457", "#00838f", "#9e9d24", "#4e342e",
    "#283593", "#f9a825",
];

/// The HTML report: rows are spooled, the document is written by [`HtmlReport::finish`].
pub struct HtmlReport<W: Write> {
    out: W,
    spool: BufWriter<File>,
}

impl<W: Write> HtmlReport<W> {
    /// Starts the report: `out` receives the document, `spool` (an empty temporary file)
    /// holds the message rows meanwhile.
    pub fn new(out: W, spool: File) -> std::io::Result<Self> {
        Ok(HtmlReport {
            out,
            spool: BufWriter::new(spool),
        })
    }

    /// Writes one message row (to the spool).
    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        let outcome = row.evaluated.outcome;
        let class = outcome.as_str();
        let mut series: Vec<&str> = if outcome.counts_reasons() {
            row.reason_codes().collect()
        } else {
            Vec::new()
        };
        if series.is_empty() {
            series.push(class);
        }
        let findings = |findings: &[Finding]| {
            findings
                .iter()
                .map(|finding| format!("<div>{}</div>", escape(&finding.text())))
                .collect::<String>()
        };
        writeln!(
            self.spool,
            "<tr class=\"{class}\" data-series=\"{}\"><td>{}</td><td class=\"source\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"verdict\">{class}</td><td>{}</td><td class=\"findings\">{}</td><td class=\"findings warnings\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&series.join(" ")),
            row.sequence + 1,
            escape(&row.source),
            escape(row.date_text().as_deref().unwrap_or("")),
            escape(row.identity.from.as_deref().unwrap_or("")),
            escape(row.identity.message_id.as_deref().unwrap_or("")),
            row.evaluated.event_state.map_or("", |state| state.code()),
            findings(&row.evaluated.reasons),
            findings(&row.evaluated.warnings),
            escape(&row.evaluated.signers.join(" ")),
            escape(&row.evaluated.claimed_signers.join(" ")),
            escape(&row.evaluated.methods_text(", ")),
        )
    }

    /// Writes the document: head, run facts and summary, chart, filters, the spooled rows
    /// and the script. Returns the output, flushed.
    pub fn finish(
        mut self,
        summary: &Summary,
        elapsed: Duration,
        info: &RunInfo,
    ) -> std::io::Result<W> {
        let colours = colours(summary);
        let mut html = String::new();
        html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        let _ = writeln!(
            html,
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            content_security_policy()
        );
        html.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
        html.push_str("<title>imipsec audit report</title>\n");
        html.push_str(STYLE);
        html.push_str("</head>\n<body>\n<main>\n");
        summary_section(&mut html, summary, elapsed, info);
        chart_section(&mut html, summary, &colours);
        filter_section(&mut html, summary, &colours);
        html.push_str(
            "<section id=\"messages\">\n<h2>Messages</h2>\n<div class=\"scroll\">\n<table id=\"message-table\">\n",
        );
        html.push_str(MESSAGE_HEADER);
        html.push_str("\n<tbody>\n");
        self.out.write_all(html.as_bytes())?;
        let mut spool = self
            .spool
            .into_inner()
            .map_err(|error| error.into_error())?;
        spool.rewind()?;
        std::io::copy(&mut spool, &mut self.out)?;
        self.out
            .write_all(b"</tbody>\n</table>\n</div>\n</section>\n</main>\n<script>")?;
        self.out.write_all(SCRIPT.as_bytes())?;
        self.out.write_all(b"</script>\n</body>\n</html>\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The fixed colour of a class series, if `name` is one.
fn class_colour(name: &str) -> Option<&'static str> {
    match name {
        "accept" => Some(ACCEPT_COLOUR),
        "error" => Some(ERROR_COLOUR),
        "not-calendar" => Some(NOT_CALENDAR_COLOUR),
        "not-decrypted" => Some(NOT_DECRYPTED_COLOUR),
        _ => None,
    }
}

/// Every series (classes, reason codes) with its colour, in legend order.
fn colours(summary: &Summary) -> BTreeMap<String, &'static str> {
    let mut names: BTreeSet<String> = summary.reasons.keys().cloned().collect();
    for series in summary.days.values() {
        names.extend(series.keys().cloned());
    }
    for (outcome, count) in &summary.outcomes {
        if !outcome.counts_reasons() && *count > 0 {
            names.insert(outcome.as_str().to_string());
        }
    }
    let mut next = REASON_COLOURS.iter().cycle();
    names
        .into_iter()
        .map(|name| {
            let colour =
                class_colour(&name).unwrap_or_else(|| next.next().copied().unwrap_or(ERROR_COLOUR));
            (name, colour)
        })
        .collect()
}

fn count_table(html: &mut String, heading: &str, rows: &[(String, u64)]) {
    let _ = writeln!(
        html,
        "<table class=\"counts\"><tr><th>{}</th><th>messages</th></tr>",
        escape(heading)
    );
    if rows.is_empty() {
        html.push_str("<tr><td>(none)</td><td></td></tr>\n");
    }
    for (key, count) in rows {
        let _ = writeln!(html, "<tr><td>{}</td><td>{count}</td></tr>", escape(key));
    }
    html.push_str("</table>\n");
}

fn summary_section(html: &mut String, summary: &Summary, elapsed: Duration, info: &RunInfo) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    html.push_str("<section id=\"summary\">\n<h1>imipsec audit report</h1>\n");
    if !info.event_state_checked() {
        html.push_str(
            "<p class=\"notice\"><strong>Event state was NOT checked</strong> (no store): \
             replays, stale SEQUENCE numbers and changes to an event by someone other than its \
             organizer on record were not detected. Audit with --store to check them.</p>\n",
        );
    }
    if summary.count(Outcome::NotDecrypted) > 0 {
        let _ = writeln!(
            html,
            "<p class=\"notice\">{} messages were encrypted to a key this audit was not given \
             (--identity): their content is unknown.</p>",
            summary.count(Outcome::NotDecrypted)
        );
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items
                .iter()
                .map(|item| escape(item))
                .collect::<Vec<_>>()
                .join("<br>")
        }
    };
    let facts: [(&str, String); 9] = [
        ("Evaluated at", escape(&rfc3339(info.at))),
        (
            "Generated",
            escape(&rfc3339(
                info.generated
                    .replace_nanosecond(0)
                    .unwrap_or(info.generated),
            )),
        ),
        ("imipsec version", escape(info.version)),
        ("Mailboxes", list(&info.inputs)),
        ("Trust anchors", list(&info.anchors)),
        ("CRLs", list(&info.crls)),
        ("Decryption identities", info.identities.to_string()),
        (
            "Event state",
            if info.event_state_checked() {
                escape(&info.event_state_text())
            } else {
                "<strong>NOT checked</strong> (no store)".to_string()
            },
        ),
        (
            "Recorded",
            if info.record {
                "yes: accepted messages were recorded in the store".to_string()
            } else {
                "no (read-only)".to_string()
            },
        ),
    ];
    html.push_str("<div class=\"tables\">\n<table class=\"facts\">\n");
    for (name, value) in facts {
        let _ = writeln!(html, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    html.push_str("</table>\n");
    let outcomes: Vec<(String, u64)> = Outcome::ALL
        .into_iter()
        .map(|outcome| (outcome.as_str().to_string(), summary.count(outcome)))
        .collect();
    count_table(html, "verdict", &outcomes);
    let mut reasons: Vec<(String, u64)> = summary
        .reasons
        .iter()
        .map(|(code, count)| (code.clone(), *count))
        .collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    count_table(html, "reason (reject, error)", &reasons);
    let owned = |rows: Vec<(&str, u64)>| -> Vec<(String, u64)> {
        rows.into_iter()
            .map(|(key, count)| (key.to_string(), count))
            .collect()
    };
    count_table(html, "signer (verified)", &owned(summary.top_signers()));
    if !summary.claimed_signers.is_empty() {
        count_table(
            html,
            "signer claimed, not verified",
            &owned(summary.top_claimed_signers()),
        );
    }
    let mut methods: Vec<(String, u64)> = summary
        .methods
        .iter()
        .map(|(method, count)| (method.clone(), *count))
        .collect();
    methods.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    count_table(html, "method", &methods);
    html.push_str("</div>\n");
    let _ = writeln!(
        html,
        "<p>{} messages, {:.1} MB, in {:.2} s ({:.0} messages/s). Showing <span id=\"shown\">all</span> rows.</p>",
        summary.messages,
        summary.bytes as f64 / 1e6,
        seconds,
        summary.messages as f64 / seconds,
    );
    if let Some(note) = summary.event_state_note() {
        let _ = writeln!(html, "<p class=\"warning\">{}</p>", escape(&note));
    }
    html.push_str("</section>\n");
}

/// The chart buckets: per day, or per month when the dates span more than
/// [`MAX_DAILY_SPAN_DAYS`].
fn buckets(summary: &Summary) -> (BTreeMap<String, BTreeMap<String, u64>>, &'static str) {
    let first = summary.days.keys().next();
    let last = summary.days.keys().next_back();
    let monthly = match (first, last) {
        (Some(first), Some(last)) => (*last - *first).whole_days() > MAX_DAILY_SPAN_DAYS,
        _ => false,
    };
    let label = |date: &Date| {
        if monthly {
            format!("{:04}-{:02}", date.year(), u8::from(date.month()))
        } else {
            format!(
                "{:04}-{:02}-{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            )
        }
    };
    let mut buckets: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (date, series) in &summary.days {
        let bucket = buckets.entry(label(date)).or_default();
        for (name, count) in series {
            *bucket.entry(name.clone()).or_default() += count;
        }
    }
    (buckets, if monthly { "month" } else { "day" })
}

fn chart_section(html: &mut String, summary: &Summary, colours: &BTreeMap<String, &str>) {
    let (buckets, unit) = buckets(summary);
    let _ = writeln!(
        html,
        "<section id=\"chart\">\n<h2>Verdicts per {unit} (by first reason; Date header, UTC)</h2>"
    );
    if buckets.is_empty() {
        html.push_str("<p>No message has a usable Date header.</p>\n</section>\n");
        return;
    }
    let (width, height) = (960.0_f64, 320.0_f64);
    let (left, right, top, bottom) = (50.0, 10.0, 10.0, 60.0);
    let plot_width = width - left - right;
    let plot_height = height - top - bottom;
    let max_total = buckets
        .values()
        .map(|series| series.values().sum::<u64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let slot = plot_width / buckets.len() as f64;
    let bar = (slot * 0.8).max(1.0);
    let _ = writeln!(
        html,
        "<svg id=\"reason-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"verdict reasons per {unit}\">"
    );
    let _ = writeln!(
        html,
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fafafa\"/>"
    );
    // Y axis with four gridlines.
    for step in 0..=4u32 {
        let value = max_total as f64 * f64::from(step) / 4.0;
        let y = top + plot_height - plot_height * f64::from(step) / 4.0;
        let _ = writeln!(
            html,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{value:.0}</text>",
            width - right,
            left - 4.0,
            y + 4.0
        );
    }
    let label_every = (buckets.len() / 16).max(1);
    for (index, (label, series)) in buckets.iter().enumerate() {
        let x = left + slot * index as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_height;
        for (name, count) in series {
            let h = plot_height * *count as f64 / max_total as f64;
            y -= h;
            let colour = colours.get(name).copied().unwrap_or(ERROR_COLOUR);
            let _ = writeln!(
                html,
                "<rect class=\"bar\" data-series=\"{}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{} {}: {count}</title></rect>",
                escape(name),
                escape(label),
                escape(name)
            );
        }
        if index % label_every == 0 {
            let lx = x + bar / 2.0;
            let ly = top + plot_height + 12.0;
            let _ = writeln!(
                html,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" font-size=\"11\" text-anchor=\"end\" transform=\"rotate(-40 {lx:.1} {ly:.1})\">{}</text>",
                escape(label)
            );
        }
    }
    let _ = writeln!(
        html,
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>",
        top + plot_height,
        width - right,
        top + plot_height
    );
    html.push_str("</svg>\n");
    if summary.undated > 0 {
        let _ = writeln!(
            html,
            "<p>{} messages without a usable Date header are not charted.</p>",
            summary.undated
        );
    }
    html.push_str("</section>\n");
}

fn filter_section(html: &mut String, summary: &Summary, colours: &BTreeMap<String, &str>) {
    html.push_str("<section id=\"filters\">\n<h2>Show messages with</h2>\n");
    for (name, colour) in colours {
        let class = Outcome::ALL
            .into_iter()
            .find(|outcome| !outcome.counts_reasons() && outcome.as_str() == name);
        let count = match class {
            Some(outcome) => summary.count(outcome),
            None => summary.reasons.get(name).copied().unwrap_or(0),
        };
        let _ = writeln!(
            html,
            "<label><input type=\"checkbox\" value=\"{0}\" checked><span class=\"swatch\" style=\"background:{colour}\"></span>{0} ({count})</label>",
            escape(name)
        );
    }
    html.push_str("</section>\n");
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(character),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Evaluated, Finding, Identity};
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    fn info() -> RunInfo {
        RunInfo {
            version: "9.9.9",
            at: time::macros::datetime!(2026-06-01 00:00 UTC),
            generated: time::macros::datetime!(2026-06-02 12:00 UTC),
            inputs: vec!["in<box>".into()],
            anchors: vec!["root.pem".into()],
            crls: vec!["ca.crl".into()],
            identities: 0,
            store: None,
            recipient: None,
            record: false,
        }
    }

    #[test]
    fn report_has_rows_chart_and_filters() {
        let mut summary = Summary::default();
        let mut report = HtmlReport::new(Vec::new(), tempfile::tempfile().unwrap()).unwrap();
        for (index, code) in [None, Some("bad-signature"), Some("<script>")]
            .into_iter()
            .enumerate()
        {
            let row = Row {
                sequence: index as u64,
                source: format!("box:{index}"),
                identity: Identity {
                    message_id: None,
                    date: Some(time::macros::datetime!(2026-05-01 10:00 UTC)),
                    from: None,
                },
                evaluated: Evaluated {
                    outcome: if code.is_some() {
                        Outcome::Reject
                    } else {
                        Outcome::Accept
                    },
                    reasons: code
                        .map(|code| Finding {
                            code: code.into(),
                            detail: "d".into(),
                        })
                        .into_iter()
                        .collect(),
                    warnings: Vec::new(),
                    signers: Vec::new(),
                    claimed_signers: Vec::new(),
                    methods: Vec::new(),
                    verdict_json: None,
                    event_state: Some(imipsec_pipeline::EventState::NotChecked),
                },
                input_bytes: 1,
            };
            summary.add(&row);
            report.write(&row).unwrap();
        }
        let html = String::from_utf8(
            report
                .finish(&summary, Duration::from_secs(1), &info())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(html.matches("<tr class=").count(), 3);
        // The summary and the run's facts come before the rows.
        let summary_at = html.find("id=\"summary\"").unwrap();
        assert!(summary_at < html.find("<tr class=").unwrap());
        for fact in [
            "2026-06-01T00:00:00Z",
            "2026-06-02T12:00:00Z",
            "9.9.9",
            "ca.crl",
        ] {
            assert!(html[..summary_at + 4000].contains(fact), "{fact}");
        }
        assert!(html.contains("in&lt;box&gt;"), "escaped input name");
        assert!(html.contains("Event state was NOT checked"));
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
        assert!(html.contains("value=\"bad-signature\""));
        assert!(html.contains("<td>not-checked</td>"));
        assert!(html.contains("event-state checks were not done"));
        assert!(!html.contains("<script>\""), "unescaped code");
        // Self-contained: nothing is loaded from elsewhere.
        assert!(!html.contains(" src=") && !html.contains(" href="));
        assert!(html.contains(&content_security_policy()));
    }

    /// The CSP allows exactly the script the report carries: a change to the script without
    /// its hash would leave the filters dead in every browser. Recomputed with the openssl
    /// CLI (no SHA-256 in this crate).
    #[test]
    fn script_hash_matches_the_script() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", "openssl dgst -sha256 -binary | openssl base64 -A"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(SCRIPT.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        assert_eq!(
            String::from_utf8(output.stdout).unwrap().trim(),
            SCRIPT_SHA256
        );
    }
}
