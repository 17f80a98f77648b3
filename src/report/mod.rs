//! What `imipsec audit` reports: one [`Row`] per message, streamed to JSON Lines, CSV and
//! HTML writers, and a [`Summary`] that aggregates counts without keeping the rows.

pub mod csv;
pub mod html;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

use imipsec_pipeline::EventState;
use serde::Serialize;
use time::Date;

/// The verdict of one audited message, as the reports spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every check passed.
    Accept,
    /// At least one reason was found (see the reason codes).
    Reject,
    /// The message could not be evaluated (unreadable file, store failure).
    Error,
}

impl Outcome {
    /// The lowercase name used in every report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accept => "accept",
            Outcome::Reject => "reject",
            Outcome::Error => "error",
        }
    }
}

/// A reason or warning code with its human detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code (see the pipeline's reason codes).
    pub code: String,
    /// Human-readable detail (not stable).
    pub detail: String,
}

/// What the evaluation of one message found.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Accept, reject or error.
    pub outcome: Outcome,
    /// Reasons (empty on accept), most specific first.
    pub reasons: Vec<Finding>,
    /// Warnings.
    pub warnings: Vec<Finding>,
    /// Email addresses of the verified signers.
    pub signers: Vec<String>,
    /// iTIP methods of the evaluated components.
    pub methods: Vec<String>,
    /// The full `verify --json` object (`verdict`, `reasons`, `warnings`, `layers`, `itip`,
    /// `event_state`), or `None` when no verdict was reached.
    pub verdict_json: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether the event state (pinned organizer, replay) was checked; `None` when no verdict
    /// was reached.
    pub event_state: Option<EventState>,
}

impl Evaluated {
    /// A message judged without the pipeline (too large, unreadable): one finding.
    pub fn single(outcome: Outcome, code: &str, detail: String) -> Self {
        Evaluated {
            outcome,
            reasons: vec![Finding {
                code: code.to_string(),
                detail,
            }],
            warnings: Vec::new(),
            signers: Vec::new(),
            methods: Vec::new(),
            verdict_json: None,
            event_state: None,
        }
    }
}

/// The headers that identify a message in the reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// `Date`, normalised to UTC (RFC 3339).
    pub date: Option<time::OffsetDateTime>,
    /// First `From` address.
    pub from: Option<String>,
}

/// One audited message.
#[derive(Debug, Clone)]
pub struct Row {
    /// Position in the input (0-based, in reading order).
    pub sequence: u64,
    /// Where it came from (`path` or `path:offset` for mbox).
    pub source: String,
    /// Identifying headers.
    pub identity: Identity,
    /// What the evaluation found.
    pub evaluated: Evaluated,
    /// Input bytes it spanned.
    pub input_bytes: u64,
}

impl Row {
    /// The RFC 3339 date, if known.
    pub fn date_text(&self) -> Option<String> {
        self.identity.date.and_then(|date| {
            date.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    }

    /// The JSON Lines object: source, message_id, date, from, then the verdict fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("source".into(), self.source.clone().into());
        object.insert("message_id".into(), self.identity.message_id.clone().into());
        object.insert("date".into(), self.date_text().into());
        object.insert("from".into(), self.identity.from.clone().into());
        match &self.evaluated.verdict_json {
            Some(verdict) => object.extend(verdict.clone()),
            None => {
                object.insert("verdict".into(), self.evaluated.outcome.as_str().into());
                let reasons = serde_json::to_value(&self.evaluated.reasons)
                    .unwrap_or(serde_json::Value::Null);
                object.insert("reasons".into(), reasons);
                object.insert("warnings".into(), serde_json::Value::Array(Vec::new()));
            }
        }
        serde_json::Value::Object(object)
    }

    /// The reason codes, in order.
    pub fn reason_codes(&self) -> impl Iterator<Item = &str> {
        self.evaluated
            .reasons
            .iter()
            .map(|finding| finding.code.as_str())
    }
}

/// Writes each row as one JSON object per line.
pub fn write_jsonl(out: &mut dyn Write, row: &Row) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &row.to_json())?;
    out.write_all(b"\n")
}

/// Counts aggregated over every row, without keeping the rows.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Messages seen.
    pub messages: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// Messages per outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Messages per reason code (a message with two reasons counts for both).
    pub reasons: BTreeMap<String, u64>,
    /// Messages per signer address.
    pub signers: HashMap<String, u64>,
    /// Components per iTIP method.
    pub methods: BTreeMap<String, u64>,
    /// Per day (from the Date header, UTC): messages per series (reason code, or `accept`
    /// / `error` when there is none).
    pub days: BTreeMap<Date, BTreeMap<String, u64>>,
    /// Messages without a usable Date header (not in `days`).
    pub undated: u64,
    /// Messages per event-state value (`checked`, `not-checked`).
    pub event_state: BTreeMap<&'static str, u64>,
    /// Accepted messages whose event state was not checked.
    pub accepted_unchecked: u64,
    /// Whether the run had an event-state store and a recipient scope. `false` (the
    /// default): the summary says that organizer pinning and replay checks were not done.
    pub event_state_store: bool,
}

/// How many signers the summary table lists.
pub const TOP_SIGNERS: usize = 10;

impl Summary {
    /// Adds one row.
    pub fn add(&mut self, row: &Row) {
        self.messages += 1;
        self.bytes += row.input_bytes;
        *self.outcomes.entry(row.evaluated.outcome).or_default() += 1;
        for code in row.reason_codes() {
            *self.reasons.entry(code.to_string()).or_default() += 1;
        }
        for signer in &row.evaluated.signers {
            *self.signers.entry(signer.to_ascii_lowercase()).or_default() += 1;
        }
        for method in &row.evaluated.methods {
            *self.methods.entry(method.clone()).or_default() += 1;
        }
        if let Some(state) = row.evaluated.event_state {
            *self.event_state.entry(state.code()).or_default() += 1;
            if state == EventState::NotChecked && row.evaluated.outcome == Outcome::Accept {
                self.accepted_unchecked += 1;
            }
        }
        match row.identity.date {
            Some(date) => {
                let series = self.days.entry(date.date()).or_default();
                *series.entry(series_of(row).to_string()).or_default() += 1;
            }
            None => self.undated += 1,
        }
    }

    /// The most frequent signers, most frequent first (ties by address).
    pub fn top_signers(&self) -> Vec<(&str, u64)> {
        let mut signers: Vec<(&str, u64)> = self
            .signers
            .iter()
            .map(|(signer, count)| (signer.as_str(), *count))
            .collect();
        signers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        signers.truncate(TOP_SIGNERS);
        signers
    }

    /// Prints the summary tables and throughput.
    pub fn print(&self, out: &mut dyn Write, elapsed: Duration) -> std::io::Result<()> {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        writeln!(
            out,
            "audited {} messages ({:.1} MB) in {:.2} s: {:.0} messages/s, {:.1} MB/s",
            self.messages,
            self.bytes as f64 / 1e6,
            seconds,
            self.messages as f64 / seconds,
            self.bytes as f64 / 1e6 / seconds
        )?;
        let outcomes: Vec<(String, u64)> = [Outcome::Accept, Outcome::Reject, Outcome::Error]
            .into_iter()
            .map(|outcome| {
                let count = self.outcomes.get(&outcome).copied().unwrap_or(0);
                (outcome.as_str().to_string(), count)
            })
            .collect();
        table(out, "verdict", &outcomes)?;
        let reasons: Vec<(String, u64)> = by_count(self.reasons.iter());
        table(out, "reason", &reasons)?;
        let signers: Vec<(String, u64)> = self
            .top_signers()
            .into_iter()
            .map(|(signer, count)| (signer.to_string(), count))
            .collect();
        table(out, "signer", &signers)?;
        let methods: Vec<(String, u64)> = by_count(self.methods.iter());
        table(out, "method", &methods)?;
        let states: Vec<(String, u64)> = self
            .event_state
            .iter()
            .map(|(state, count)| ((*state).to_owned(), *count))
            .collect();
        table(out, "event state", &states)?;
        if let Some(note) = self.event_state_note() {
            writeln!(out)?;
            writeln!(out, "{note}")?;
        }
        Ok(())
    }

    /// What the summary must say when event state was not checked, if anything.
    pub fn event_state_note(&self) -> Option<String> {
        if !self.event_state_store {
            Some(
                "warning: event-state checks were not done (no store or no recipient): the \
                 organizer pinned to each UID and SEQUENCE/DTSTAMP replay were not checked"
                    .to_owned(),
            )
        } else if self.accepted_unchecked > 0 {
            Some(format!(
                "warning: {} accepted messages were not checked against the event state",
                self.accepted_unchecked
            ))
        } else {
            None
        }
    }
}

/// The chart series a row belongs to: its first (most specific) reason, else its outcome.
pub fn series_of(row: &Row) -> &str {
    row.reason_codes()
        .next()
        .unwrap_or(row.evaluated.outcome.as_str())
}

fn by_count<'a>(entries: impl Iterator<Item = (&'a String, &'a u64)>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = entries.map(|(key, count)| (key.clone(), *count)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    rows
}

fn table(out: &mut dyn Write, heading: &str, rows: &[(String, u64)]) -> std::io::Result<()> {
    writeln!(out)?;
    let width = rows
        .iter()
        .map(|(key, _)| key.chars().count())
        .chain([heading.len()])
        .max()
        .unwrap_or(0);
    writeln!(out, "{heading:<width$}  {:>9}", "messages")?;
    if rows.is_empty() {
        writeln!(out, "{:<width$}  {:>9}", "(none)", "")?;
    }
    for (key, count) in rows {
        writeln!(out, "{key:<width$}  {count:>9}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, codes: &[&str], day: Option<Date>) -> Row {
        Row {
            sequence: 0,
            source: "m.eml".into(),
            identity: Identity {
                message_id: Some("1@x".into()),
                date: day.map(|day| day.midnight().assume_utc()),
                from: Some("a@x".into()),
            },
            evaluated: Evaluated {
                outcome,
                reasons: codes
                    .iter()
                    .map(|code| Finding {
                        code: code.to_string(),
                        detail: "d".into(),
                    })
                    .collect(),
                warnings: Vec::new(),
                signers: vec!["A@x".into()],
                methods: vec!["REQUEST".into()],
                verdict_json: None,
                event_state: Some(EventState::NotChecked),
            },
            input_bytes: 10,
        }
    }

    #[test]
    fn summary_counts_each_reason_and_series_by_first_reason() {
        let day = time::macros::date!(2026 - 05 - 01);
        let mut summary = Summary::default();
        summary.add(&row(Outcome::Accept, &[], Some(day)));
        summary.add(&row(Outcome::Reject, &["a-code", "b-code"], Some(day)));
        summary.add(&row(Outcome::Reject, &["b-code"], None));
        assert_eq!(summary.messages, 3);
        assert_eq!(summary.reasons["b-code"], 2);
        assert_eq!(summary.signers["a@x"], 3);
        assert_eq!(summary.days[&day]["accept"], 1);
        assert_eq!(summary.days[&day]["a-code"], 1);
        assert_eq!(summary.undated, 1);
        let mut text = Vec::new();
        summary.print(&mut text, Duration::from_secs(1)).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("audited 3 messages"), "{text}");
        assert!(text.contains("b-code"), "{text}");
        assert_eq!(summary.event_state["not-checked"], 3);
        assert_eq!(summary.accepted_unchecked, 1);
    }

    /// Issue #11 item 10: a store-less audit says in its summary that state was not checked.
    #[test]
    fn storeless_summary_says_event_state_checks_were_not_done() {
        let mut summary = Summary::default();
        summary.add(&row(Outcome::Accept, &[], None));
        let mut text = Vec::new();
        summary.print(&mut text, Duration::from_secs(1)).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("event-state checks were not done"), "{text}");
        summary.event_state_store = true;
        assert!(summary.event_state_note().unwrap().contains("1 accepted"));
    }

    #[test]
    fn json_line_has_identity_then_verdict() {
        let json = row(Outcome::Reject, &["x"], None).to_json();
        assert_eq!(json["source"], "m.eml");
        assert_eq!(json["message_id"], "1@x");
        assert_eq!(json["verdict"], "reject");
        assert_eq!(json["reasons"][0]["code"], "x");
        assert!(json["date"].is_null());
    }
}
