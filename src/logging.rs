//! Structured logging set-up for the binary: human-readable or JSON lines on stderr (moved
//! from the gate library, which only defines the field values, `imipsec_gate::logging`).
//!
//! What a log reader (a person, `jq`, a log shipper) gets:
//! - colour only on a terminal: no ANSI escapes when stderr is a file or a pipe, or when
//!   `NO_COLOR` is set (<https://no-color.org>);
//! - in JSON, lists are JSON arrays (`"codes":["unsigned"]`), never a string holding Rust's
//!   debug rendering of one (`"codes":"[\"unsigned\"]"`): log them with [`List`](imipsec_gate::logging::List), under one of
//!   the names in [`LIST_FIELDS`];
//! - values in their plain Display form (`127.0.0.1:8891`, `none`), never Rust debug
//!   formatting (`Some(127.0.0.1:8891)`): log optional values with [`OrNone`](imipsec_gate::logging::OrNone).

use std::fmt;
use std::io::IsTerminal;

use imipsec_gate::logging::LIST_FIELDS;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line (audit lines carry target `imipsec_gate::audit`).
    Json,
}

/// Whether text logs may carry ANSI colour: only on a terminal, and not with `NO_COLOR` set.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Install the global subscriber; the level comes from `RUST_LOG` (default `info`).
/// Does nothing if a subscriber is already installed.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).try_init(),
    };
}

/// One JSON object per event, in tracing-subscriber's shape (`timestamp`, `level`, `fields`,
/// `target`), with [`LIST_FIELDS`] as arrays and numbers and booleans as such.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", json_line(event, OffsetDateTime::now_utc()))
    }
}

/// The JSON object for `event` at `at`.
fn json_line(event: &Event<'_>, at: OffsetDateTime) -> Value {
    let mut fields = Map::new();
    event.record(&mut JsonVisitor(&mut fields));
    let metadata = event.metadata();
    let mut line = Map::new();
    line.insert(
        "timestamp".to_owned(),
        Value::String(at.format(&Rfc3339).unwrap_or_default()),
    );
    line.insert(
        "level".to_owned(),
        Value::String(metadata.level().as_str().to_owned()),
    );
    line.insert("fields".to_owned(), Value::Object(fields));
    line.insert(
        "target".to_owned(),
        Value::String(metadata.target().to_owned()),
    );
    Value::Object(line)
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if LIST_FIELDS.contains(&field.name())
            && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text)
        {
            self.0.insert(field.name().to_owned(), Value::Array(items));
            return;
        }
        self.0.insert(field.name().to_owned(), Value::String(text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imipsec_gate::logging::{List, OrNone};
    use std::sync::{Arc, Mutex};

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn json_of(emit: impl FnOnce()) -> Value {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = captured.0.lock().unwrap().clone();
        serde_json::from_slice(&bytes).unwrap()
    }

    // Issue #14 point 9: JSON logs wrote arrays as strings (`"codes":"[\"unsigned\"]"`).
    #[test]
    fn list_fields_are_json_arrays() {
        let codes = vec!["unsigned", "bad-\"quote"];
        let recipients = vec!["a@example.org".to_owned()];
        let line = json_of(|| {
            tracing::info!(
                target: "imipsec_gate::audit",
                codes = %List(&codes),
                recipients = %List(&recipients),
                decide_us = 12u64,
                "decision"
            );
        });
        assert_eq!(
            line["fields"]["codes"],
            serde_json::json!(["unsigned", "bad-\"quote"])
        );
        assert_eq!(
            line["fields"]["recipients"],
            serde_json::json!(["a@example.org"])
        );
        assert_eq!(line["fields"]["decide_us"], serde_json::json!(12));
        assert_eq!(line["fields"]["message"], "decision");
        assert_eq!(line["target"], "imipsec_gate::audit");
        assert_eq!(line["level"], "INFO");
    }

    // A sender-controlled value that looks like an array stays a string.
    #[test]
    fn other_fields_that_look_like_arrays_stay_strings() {
        let line = json_of(|| tracing::info!(mail_from = %"[\"x\"]", "decision"));
        assert_eq!(line["fields"]["mail_from"], "[\"x\"]");
    }

    // Issue #14 point 9: `Some(127.0.0.1:18891)`.
    #[test]
    fn optional_values_are_plain_display() {
        let address: std::net::SocketAddr = "127.0.0.1:18891".parse().unwrap();
        assert_eq!(OrNone(Some(address)).to_string(), "127.0.0.1:18891");
        assert_eq!(OrNone(None::<std::net::SocketAddr>).to_string(), "none");
        let line = json_of(|| tracing::info!(milter = %OrNone(Some(address)), "gate listening"));
        assert_eq!(line["fields"]["milter"], "127.0.0.1:18891");
    }
}
