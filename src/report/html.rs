//! `--html`: a self-contained report (no external resources): a summary, a stacked bar chart
//! of verdict reasons over time (inline SVG, per day or per month from the Date header),
//! reason filters (checkboxes and a few lines of inline JavaScript) and one table row per
//! message.
//!
//! Rows are streamed into the file as they arrive; the summary, chart and filters, known only
//! at the end, are written after the table and shown above it with CSS `order`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use time::Date;

use super::{Outcome, Row, Summary};

/// Above this many days between the first and last Date, the chart is per month.
pub const MAX_DAILY_SPAN_DAYS: i64 = 62;

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>imipsec audit report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; background: #fff; }
main { display: flex; flex-direction: column; gap: 1em; }
#summary { order: 1; } #chart { order: 2; } #filters { order: 3; } #messages { order: 4; }
h1 { font-size: 1.4em; margin: 0; } h2 { font-size: 1.1em; margin: 0.3em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
tr.accept td.verdict { color: #1b5e20; font-weight: bold; }
tr.reject td.verdict { color: #b71c1c; font-weight: bold; }
tr.error td.verdict { color: #555; font-weight: bold; }
.counts td:last-child { text-align: right; }
#filters label { margin-right: 1em; white-space: nowrap; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; }
</style>
</head>
<body>
<main>
<section id="messages">
<h2>Messages</h2>
<table id="message-table">
<thead><tr><th>#</th><th>source</th><th>date</th><th>from</th><th>message-id</th><th>verdict</th><th>event state</th><th>reasons</th><th>signers</th><th>methods</th></tr></thead>
<tbody>
"#;

const SCRIPT: &str = r#"<script>
// Show a row when one of its series (reason codes, or accept / error) is checked.
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
</script>
"#;

/// Colours of the chart series: accept and error are fixed, reasons cycle through the rest.
const ACCEPT_COLOUR: &str = "#2e7d32";
const ERROR_COLOUR: &str = "#757575";
const REASON_COLOURS: [&str; 10] = [
    "#c62828", "#ef6c00", "#6a1b9a", "#1565c0", "#ad1457", "#00838f", "#9e9d24", "#4e342e",
    "#283593", "#f9a825",
];

/// The streamed HTML report.
pub struct HtmlReport<W: Write> {
    out: W,
}

impl<W: Write> HtmlReport<W> {
    /// Starts the report (head and table header).
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(HEAD.as_bytes())?;
        Ok(HtmlReport { out })
    }

    /// Writes one message row.
    pub fn write(&mut self, row: &Row) -> std::io::Result<()> {
        let outcome = row.evaluated.outcome.as_str();
        let mut series: Vec<&str> = row.reason_codes().collect();
        if series.is_empty() {
            series.push(outcome);
        }
        let reasons = row
            .evaluated
            .reasons
            .iter()
            .map(|finding| {
                format!(
                    "<span title=\"{}\">{}</span>",
                    escape(&finding.detail),
                    escape(&finding.code)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        writeln!(
            self.out,
            "<tr class=\"{outcome}\" data-series=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"verdict\">{outcome}</td><td>{}</td><td>{reasons}</td><td>{}</td><td>{}</td></tr>",
            escape(&series.join(" ")),
            row.sequence + 1,
            escape(&row.source),
            escape(row.date_text().as_deref().unwrap_or("")),
            escape(row.identity.from.as_deref().unwrap_or("")),
            escape(row.identity.message_id.as_deref().unwrap_or("")),
            row.evaluated.event_state.map_or("", |state| state.code()),
            escape(&row.evaluated.signers.join(" ")),
            escape(&row.evaluated.methods.join(" ")),
        )
    }

    /// Ends the table and writes the summary, chart, filters and script.
    pub fn finish(mut self, summary: &Summary, elapsed: Duration) -> std::io::Result<W> {
        self.out.write_all(b"</tbody>\n</table>\n</section>\n")?;
        let colours = colours(summary);
        let mut html = String::new();
        summary_section(&mut html, summary, elapsed);
        chart_section(&mut html, summary, &colours);
        filter_section(&mut html, summary, &colours);
        html.push_str("</main>\n");
        html.push_str(SCRIPT);
        html.push_str("</body>\n</html>\n");
        self.out.write_all(html.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Every series (`accept`, `error`, reason codes) with its colour, in legend order.
fn colours(summary: &Summary) -> BTreeMap<String, &'static str> {
    let mut names: BTreeSet<String> = summary.reasons.keys().cloned().collect();
    for series in summary.days.values() {
        names.extend(series.keys().cloned());
    }
    for outcome in summary.outcomes.keys() {
        if *outcome != Outcome::Reject {
            names.insert(outcome.as_str().to_string());
        }
    }
    let mut next = REASON_COLOURS.iter().cycle();
    names
        .into_iter()
        .map(|name| {
            let colour = match name.as_str() {
                "accept" => ACCEPT_COLOUR,
                "error" => ERROR_COLOUR,
                _ => next.next().copied().unwrap_or(ERROR_COLOUR),
            };
            (name, colour)
        })
        .collect()
}

fn summary_section(html: &mut String, summary: &Summary, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    let _ = write!(
        html,
        "<section id=\"summary\">\n<h1>imipsec audit report</h1>\n<p>{} messages, {:.1} MB, in {:.2} s ({:.0} messages/s). Showing <span id=\"shown\">{}</span> rows.</p>\n",
        summary.messages,
        summary.bytes as f64 / 1e6,
        seconds,
        summary.messages as f64 / seconds,
        summary.messages
    );
    html.push_str("<table class=\"counts\"><tr><th>verdict</th><th>messages</th></tr>\n");
    for outcome in [Outcome::Accept, Outcome::Reject, Outcome::Error] {
        let count = summary.outcomes.get(&outcome).copied().unwrap_or(0);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{count}</td></tr>",
            outcome.as_str()
        );
    }
    html.push_str("</table>\n");
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
        let count = match name.as_str() {
            "accept" => summary.outcomes.get(&Outcome::Accept).copied(),
            "error" if !summary.reasons.contains_key("error") => {
                summary.outcomes.get(&Outcome::Error).copied()
            }
            _ => summary.reasons.get(name).copied(),
        }
        .unwrap_or(0);
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

    #[test]
    fn report_has_rows_chart_and_filters() {
        let mut summary = Summary::default();
        let mut report = HtmlReport::new(Vec::new()).unwrap();
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
                    methods: Vec::new(),
                    verdict_json: None,
                    event_state: Some(imipsec_pipeline::EventState::NotChecked),
                },
                input_bytes: 1,
            };
            summary.add(&row);
            report.write(&row).unwrap();
        }
        let html =
            String::from_utf8(report.finish(&summary, Duration::from_secs(1)).unwrap()).unwrap();
        assert_eq!(html.matches("<tr class=").count(), 3);
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
        assert!(html.contains("value=\"bad-signature\""));
        assert!(html.contains("<td>not-checked</td>"));
        assert!(html.contains("event-state checks were not done"));
        assert!(!html.contains("<script>\""), "unescaped code");
        // Self-contained: nothing is loaded from elsewhere.
        assert!(!html.contains(" src=") && !html.contains(" href="));
    }
}
