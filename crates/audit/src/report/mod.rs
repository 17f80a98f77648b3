//! What `imipsec audit` reports: one [`Row`] per message, streamed to JSON Lines, CSV and
//! HTML writers, and a [`Summary`] that aggregates counts without keeping the rows.
//!
//! Every report says the same things:
//! - the class of each message ([`Outcome`]: `accept`, `reject`, `not-calendar`,
//!   `not-decrypted`, `error`), counted apart in the summary; the reason table and chart
//!   count the reasons of `reject` and `error` rows only;
//! - the verified signers (`signers`), and apart from them the addresses claimed by
//!   signatures that did not verify (`claimed_signers`), which are never credited;
//! - whether event state was checked: for the run ([`RunInfo::event_state_checked`]: the
//!   summary line, the HTML notice and facts table) and for each message (the verdict's own
//!   fact, [`EventState`]: the JSONL and CSV field `event_state`, `checked` or `not-checked`,
//!   and the HTML column).
//!
//! JSON Lines keys: `source`, `message_id`, `date`, `from`, `verdict` (the class), `reasons`
//! and `warnings` (`[{code, detail}]`), `signers`, `claimed_signers`, `event_state`,
//! `layers`, `itip` (as `verify --json`). CSV columns: see [`csv::HEADER`]; every cell is
//! neutralised against spreadsheet formulas ([`csv::neutralise`]).

pub mod csv;
pub mod html;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

use imipsec_pipeline::EventState;
use serde::Serialize;
use time::Date;

/// The class of one audited message, as every report spells it.
///
/// `reject` is kept for calendar mail that failed a check: ordinary mail without calendar
/// content and mail the audit could not decrypt are counted apart, so the reject count says
/// how many calendar messages a gate would have stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Calendar mail that passed every check.
    Accept,
    /// Calendar mail that failed at least one check (see the reason codes), or mail whose
    /// content could not be told (malformed MIME, a limit).
    Reject,
    /// Mail without calendar content: neither accepted nor rejected.
    NotCalendar,
    /// Encrypted to a key the audit was not given: its content (calendar or not) is unknown.
    NotDecrypted,
    /// The message could not be evaluated (unreadable file, store failure).
    Error,
}

impl Outcome {
    /// Every class, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Accept,
        Outcome::Reject,
        Outcome::NotCalendar,
        Outcome::NotDecrypted,
        Outcome::Error,
    ];

    /// The name used in every report.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accept => "accept",
            Outcome::Reject => "reject",
            Outcome::NotCalendar => "not-calendar",
            Outcome::NotDecrypted => "not-decrypted",
            Outcome::Error => "error",
        }
    }

    /// Whether the reasons of a message of this class are counted in the reason table and
    /// the chart (the reasons of ordinary or undecryptable mail say nothing about calendars).
    pub fn counts_reasons(self) -> bool {
        matches!(self, Outcome::Reject | Outcome::Error)
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

impl Finding {
    /// `code: detail` (or the code alone when there is no detail), as the reports show it.
    pub fn text(&self) -> String {
        if self.detail.is_empty() {
            self.code.clone()
        } else {
            format!("{}: {}", self.code, self.detail)
        }
    }
}

/// What the evaluation of one message found.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The class.
    pub outcome: Outcome,
    /// Reasons (empty on accept), most specific first.
    pub reasons: Vec<Finding>,
    /// Warnings.
    pub warnings: Vec<Finding>,
    /// E-mail addresses of the signers whose signature verified (each once).
    pub signers: Vec<String>,
    /// E-mail addresses named by signatures that did not verify (tampered, revoked, untrusted):
    /// claimed, not proven, so never credited as signers (each once).
    pub claimed_signers: Vec<String>,
    /// iTIP methods of the evaluated components (one per component).
    pub methods: Vec<String>,
    /// The verdict's `layers` and `itip` arrays (as `verify --json` prints them), or `None`
    /// when no verdict was reached.
    pub verdict_json: Option<VerdictArrays>,
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
            claimed_signers: Vec::new(),
            methods: Vec::new(),
            verdict_json: None,
            event_state: None,
        }
    }

    /// The methods, each once with its number of components when more than one
    /// (`REQUEST ×2`), in order of first appearance, joined by `separator`.
    pub fn methods_text(&self, separator: &str) -> String {
        let mut counted: Vec<(&str, usize)> = Vec::new();
        for method in &self.methods {
            match counted
                .iter_mut()
                .find(|(name, _)| *name == method.as_str())
            {
                Some((_, count)) => *count += 1,
                None => counted.push((method, 1)),
            }
        }
        counted
            .into_iter()
            .map(|(method, count)| {
                if count > 1 {
                    format!("{method} \u{d7}{count}")
                } else {
                    method.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// A verdict's `layers` and `itip`, serialised once where the message was evaluated (in
/// the worker, not in the thread that writes the report) and written as they are: the bytes
/// `verify --json` prints for them.
#[derive(Debug, Clone)]
pub struct VerdictArrays {
    /// The `layers` array.
    pub layers: Box<serde_json::value::RawValue>,
    /// The `itip` array.
    pub itip: Box<serde_json::value::RawValue>,
}

/// The circumstances of an audit run, stated by every report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The imipsec version.
    pub version: &'static str,
    /// The evaluation time (`--at`, else the start of the run).
    pub at: time::OffsetDateTime,
    /// When the report was generated.
    pub generated: time::OffsetDateTime,
    /// The PATHs audited.
    pub inputs: Vec<String>,
    /// Trust anchor files.
    pub anchors: Vec<String>,
    /// CRL files.
    pub crls: Vec<String>,
    /// Number of decryption identities.
    pub identities: usize,
    /// The policy store, if any.
    pub store: Option<String>,
    /// The event-state scope (recipient), if any.
    pub recipient: Option<String>,
    /// Whether accepted messages were recorded.
    pub record: bool,
}

impl RunInfo {
    /// Whether event state was checked: the pipeline checks it only with a store and a
    /// scope. The one place every report takes this from.
    pub fn event_state_checked(&self) -> bool {
        self.store.is_some() && self.recipient.is_some()
    }

    /// One line saying whether event state was checked.
    pub fn event_state_text(&self) -> String {
        match (&self.store, &self.recipient, self.event_state_checked()) {
            (Some(store), Some(scope), true) => {
                format!("checked against the store {store} (scope {scope})")
            }
            _ => "NOT checked (no --store): replays, stale SEQUENCE numbers and changes by \
                  someone other than the organizer on record were not detected"
                .to_string(),
        }
    }
}

/// RFC 3339 text of a time (empty if it cannot be formatted).
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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
        self.identity.date.map(rfc3339)
    }

    /// The JSON Lines object: source, message_id, date, from, the class as `verdict`, the
    /// findings, the signers (verified, and claimed but not verified), whether event state
    /// was checked, then the verdict's `layers` and `itip`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json_line()).unwrap_or(serde_json::Value::Null)
    }

    /// The JSON Lines object, borrowed from the row: serialised straight to the writer, with
    /// no tree of values built and the verdict's arrays copied as serialised. Its own keys
    /// are in alphabetical order.
    fn json_line(&self) -> JsonLine<'_> {
        let evaluated = &self.evaluated;
        let verdict = evaluated.verdict_json.as_ref();
        JsonLine {
            claimed_signers: &evaluated.claimed_signers,
            date: self.date_text(),
            event_state: evaluated.event_state.map(|state| state.code()),
            from: self.identity.from.as_deref(),
            itip: EmptyIfNone(verdict.map(|arrays| &*arrays.itip)),
            layers: EmptyIfNone(verdict.map(|arrays| &*arrays.layers)),
            message_id: self.identity.message_id.as_deref(),
            reasons: &evaluated.reasons,
            signers: &evaluated.signers,
            source: &self.source,
            verdict: evaluated.outcome.as_str(),
            warnings: &evaluated.warnings,
        }
    }

    /// The reason codes, in order.
    pub fn reason_codes(&self) -> impl Iterator<Item = &str> {
        self.evaluated
            .reasons
            .iter()
            .map(|finding| finding.code.as_str())
    }
}

/// One JSON Lines object ([`Row::json_line`]); keys in alphabetical order.
#[derive(Serialize)]
struct JsonLine<'a> {
    claimed_signers: &'a [String],
    date: Option<String>,
    event_state: Option<&'static str>,
    from: Option<&'a str>,
    itip: EmptyIfNone<'a>,
    layers: EmptyIfNone<'a>,
    message_id: Option<&'a str>,
    reasons: &'a [Finding],
    signers: &'a [String],
    source: &'a str,
    verdict: &'static str,
    warnings: &'a [Finding],
}

/// A verdict's array, or `[]` when no verdict was reached.
struct EmptyIfNone<'a>(Option<&'a serde_json::value::RawValue>);

impl Serialize for EmptyIfNone<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(value) => value.serialize(serializer),
            None => serializer.collect_seq(std::iter::empty::<()>()),
        }
    }
}

/// Writes each row as one JSON object per line.
pub fn write_jsonl(out: &mut dyn Write, row: &Row) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, &row.json_line())?;
    out.write_all(b"\n")
}

/// Counts aggregated over every row, without keeping the rows.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Messages seen.
    pub messages: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// Messages per class.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Messages per reason code, over the classes whose reasons count
    /// ([`Outcome::counts_reasons`]; a message with two reasons counts for both).
    pub reasons: BTreeMap<String, u64>,
    /// Messages per verified signer address.
    pub signers: HashMap<String, u64>,
    /// Messages per address claimed by a signature that did not verify.
    pub claimed_signers: HashMap<String, u64>,
    /// Messages per iTIP method (a message with two components of one method counts once).
    pub methods: BTreeMap<String, u64>,
    /// Per day (from the Date header, UTC): messages per series (see [`series_of`]).
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
        let evaluated = &row.evaluated;
        *self.outcomes.entry(evaluated.outcome).or_default() += 1;
        if evaluated.outcome.counts_reasons() {
            let mut seen: Vec<&str> = Vec::new();
            for code in row.reason_codes() {
                if !seen.contains(&code) {
                    seen.push(code);
                    *self.reasons.entry(code.to_string()).or_default() += 1;
                }
            }
        }
        count_once(&mut self.signers, &evaluated.signers);
        count_once(&mut self.claimed_signers, &evaluated.claimed_signers);
        let mut methods: Vec<&String> = evaluated.methods.iter().collect();
        methods.sort();
        methods.dedup();
        for method in methods {
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

    /// Messages of `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }

    /// The most frequent verified signers, most frequent first (ties by address).
    pub fn top_signers(&self) -> Vec<(&str, u64)> {
        top(&self.signers)
    }

    /// The most frequent claimed, unverified signers.
    pub fn top_claimed_signers(&self) -> Vec<(&str, u64)> {
        top(&self.claimed_signers)
    }

    /// Prints the run's circumstances, the summary tables and throughput.
    pub fn print(
        &self,
        out: &mut dyn Write,
        elapsed: Duration,
        info: &RunInfo,
    ) -> std::io::Result<()> {
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
        writeln!(out, "evaluated at {}", rfc3339(info.at))?;
        writeln!(out, "event state: {}", info.event_state_text())?;
        let hidden = self.count(Outcome::NotDecrypted);
        if hidden > 0 {
            writeln!(
                out,
                "{hidden} messages are encrypted to a key this audit was not given (--identity): \
                 their content is unknown"
            )?;
        }
        let outcomes: Vec<(String, u64)> = Outcome::ALL
            .into_iter()
            .map(|outcome| (outcome.as_str().to_string(), self.count(outcome)))
            .collect();
        table(out, "verdict", &outcomes)?;
        let reasons: Vec<(String, u64)> = by_count(self.reasons.iter());
        table(out, "reason", &reasons)?;
        let owned = |rows: Vec<(&str, u64)>| -> Vec<(String, u64)> {
            rows.into_iter()
                .map(|(signer, count)| (signer.to_string(), count))
                .collect()
        };
        table(out, "signer", &owned(self.top_signers()))?;
        if !self.claimed_signers.is_empty() {
            table(
                out,
                "claimed signer (not verified)",
                &owned(self.top_claimed_signers()),
            )?;
        }
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

fn count_once(counts: &mut HashMap<String, u64>, addresses: &[String]) {
    let mut seen: Vec<String> = Vec::new();
    for address in addresses {
        let address = address.to_ascii_lowercase();
        if !seen.contains(&address) {
            *counts.entry(address.clone()).or_default() += 1;
            seen.push(address);
        }
    }
}

fn top(counts: &HashMap<String, u64>) -> Vec<(&str, u64)> {
    let mut rows: Vec<(&str, u64)> = counts
        .iter()
        .map(|(key, count)| (key.as_str(), *count))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    rows.truncate(TOP_SIGNERS);
    rows
}

/// The chart series a row belongs to: for a reject or error its first (most specific)
/// reason, else its class.
pub fn series_of(row: &Row) -> &str {
    let outcome = row.evaluated.outcome;
    if outcome.counts_reasons() {
        row.reason_codes().next().unwrap_or(outcome.as_str())
    } else {
        outcome.as_str()
    }
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
                claimed_signers: Vec::new(),
                methods: vec!["REQUEST".into()],
                verdict_json: None,
                event_state: Some(EventState::NotChecked),
            },
            input_bytes: 10,
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            version: "0",
            at: time::macros::datetime!(2026-06-01 00:00 UTC),
            generated: time::macros::datetime!(2026-06-02 00:00 UTC),
            inputs: vec!["box".into()],
            anchors: vec!["root.pem".into()],
            crls: Vec::new(),
            identities: 0,
            store: None,
            recipient: None,
            record: false,
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
        summary
            .print(&mut text, Duration::from_secs(1), &info())
            .unwrap();
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
        summary
            .print(&mut text, Duration::from_secs(1), &info())
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("event-state checks were not done"), "{text}");
        summary.event_state_store = true;
        assert!(summary.event_state_note().unwrap().contains("1 accepted"));
    }

    #[test]
    fn reasons_of_mail_without_calendar_or_not_decrypted_are_not_counted() {
        let day = time::macros::date!(2026 - 05 - 01);
        let mut summary = Summary::default();
        summary.add(&row(
            Outcome::NotCalendar,
            &["unsigned", "no-calendar"],
            Some(day),
        ));
        summary.add(&row(
            Outcome::NotDecrypted,
            &["decryption-failed"],
            Some(day),
        ));
        summary.add(&row(Outcome::Reject, &["unsigned"], Some(day)));
        assert_eq!(summary.reasons.len(), 1);
        assert_eq!(summary.reasons["unsigned"], 1);
        assert_eq!(summary.days[&day]["not-calendar"], 1);
        assert_eq!(summary.days[&day]["not-decrypted"], 1);
        assert_eq!(summary.count(Outcome::NotCalendar), 1);
    }

    #[test]
    fn methods_of_several_components_show_once_with_a_count() {
        let mut row = row(Outcome::Accept, &[], None);
        row.evaluated.methods = vec!["REQUEST".into(), "CANCEL".into(), "REQUEST".into()];
        assert_eq!(row.evaluated.methods_text(", "), "REQUEST \u{d7}2, CANCEL");
        let mut summary = Summary::default();
        summary.add(&row);
        assert_eq!(summary.methods["REQUEST"], 1);
    }

    #[test]
    fn storeless_run_says_event_state_was_not_checked() {
        let mut info = info();
        assert!(!info.event_state_checked());
        assert!(info.event_state_text().starts_with("NOT checked"));
        info.store = Some("s.db".into());
        info.recipient = Some("a@x".into());
        assert!(info.event_state_checked());
        let mut text = Vec::new();
        Summary::default()
            .print(&mut text, Duration::from_secs(1), &info)
            .unwrap();
        assert!(
            String::from_utf8(text)
                .unwrap()
                .contains("event state: checked")
        );
    }

    /// The line is written straight from the row: its own keys in alphabetical order, the
    /// verdict's arrays byte for byte as serialised (as `verify --json` prints them), and it
    /// reads back as [`Row::to_json`].
    #[test]
    fn json_line_is_the_row_with_the_verdict_arrays_as_serialised() {
        let layers = r#"[{"kind":"signed","path":"","status":"verified"}]"#;
        let itip = r#"[{"method":"REQUEST","component":"VEVENT","uid":"u"}]"#;
        let raw = |text: &str| serde_json::value::RawValue::from_string(text.into()).unwrap();
        let mut with_verdict = row(Outcome::Accept, &[], Some(Date::MIN));
        with_verdict.evaluated.verdict_json = Some(VerdictArrays {
            layers: raw(layers),
            itip: raw(itip),
        });
        let mut line = Vec::new();
        write_jsonl(&mut line, &with_verdict).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert!(
            line.contains(&format!(r#""itip":{itip},"layers":{layers},"#)),
            "{line}"
        );
        // The row's own keys, where they stand in the text (a parsed map would sort them).
        let keys = [
            "claimed_signers",
            "date",
            "event_state",
            "from",
            "itip",
            "layers",
            "message_id",
            "reasons",
            "signers",
            "source",
            "verdict",
            "warnings",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|key| line.find(&format!("\"{key}\":")).expect(key))
            .collect();
        assert!(positions.is_sorted(), "{line}");
        assert_eq!(
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line)
                .unwrap()
                .len(),
            keys.len()
        );
        let mut without = Vec::new();
        write_jsonl(&mut without, &row(Outcome::Reject, &["x", "y"], None)).unwrap();
        for (text, row) in [
            (line.as_bytes(), &with_verdict),
            (&without[..], &row(Outcome::Reject, &["x", "y"], None)),
        ] {
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(text).unwrap(),
                row.to_json()
            );
        }
        assert!(
            String::from_utf8(without)
                .unwrap()
                .contains(r#""itip":[],"layers":[]"#)
        );
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
