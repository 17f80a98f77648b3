//! `--csv`: one row per message, lists joined with `;`.

use std::io::Write;

use super::Row;

/// The header row.
pub const HEADER: [&str; 11] = [
    "source",
    "message_id",
    "date",
    "from",
    "verdict",
    "reasons",
    "warnings",
    "signers",
    "methods",
    "detail",
    "event_state",
];

/// A CSV writer over `out`.
pub struct CsvReport<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvReport<W> {
    /// Starts the report (writes the header row).
    pub fn new(out: W) -> csv::Result<Self> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(HEADER)?;
        Ok(CsvReport { writer })
    }

    /// Writes one message.
    pub fn write(&mut self, row: &Row) -> csv::Result<()> {
        let join = |items: &mut dyn Iterator<Item = &str>| items.collect::<Vec<_>>().join(";");
        let evaluated = &row.evaluated;
        self.writer.write_record([
            row.source.as_str(),
            row.identity.message_id.as_deref().unwrap_or(""),
            row.date_text().as_deref().unwrap_or(""),
            row.identity.from.as_deref().unwrap_or(""),
            evaluated.outcome.as_str(),
            &join(&mut row.reason_codes()),
            &join(&mut evaluated.warnings.iter().map(|w| w.code.as_str())),
            &join(&mut evaluated.signers.iter().map(String::as_str)),
            &join(&mut evaluated.methods.iter().map(String::as_str)),
            evaluated
                .reasons
                .first()
                .map(|finding| finding.detail.as_str())
                .unwrap_or(""),
            evaluated.event_state.map_or("", |state| state.code()),
        ])
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|error| std::io::Error::other(error.to_string()))
    }
}
