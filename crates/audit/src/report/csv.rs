//! `--csv`: one row per message, lists joined with `;`.
//!
//! Every cell goes through [`neutralise`]: a cell a spreadsheet would read as a formula
//! (OWASP "CSV Injection": leading `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
//! `'`, so sender-controlled headers (Message-ID, From) stay text.

use std::borrow::Cow;
use std::io::Write;

use super::Row;

/// The header row. The first ten columns keep their places; later ones are appended.
pub const HEADER: [&str; 12] = [
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
    "claimed_signers",
];

/// First characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) evaluate a
/// cell, and their full-width forms (which some spreadsheets fold to ASCII).
const FORMULA_STARTS: [char; 10] = [
    '=', '+', '-', '@', '\t', '\r', '\u{ff1d}', '\u{ff0b}', '\u{ff0d}', '\u{ff20}',
];

/// `cell`, prefixed with `'` when a spreadsheet would take it for a formula.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

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
        let cells: [String; HEADER.len()] = [
            row.source.clone(),
            row.identity.message_id.clone().unwrap_or_default(),
            row.date_text().unwrap_or_default(),
            row.identity.from.clone().unwrap_or_default(),
            evaluated.outcome.as_str().to_string(),
            join(&mut row.reason_codes()),
            join(&mut evaluated.warnings.iter().map(|w| w.code.as_str())),
            join(&mut evaluated.signers.iter().map(String::as_str)),
            evaluated.methods_text(";"),
            evaluated
                .reasons
                .first()
                .map(|finding| finding.detail.clone())
                .unwrap_or_default(),
            evaluated
                .event_state
                .map_or("", |state| state.code())
                .to_owned(),
            join(&mut evaluated.claimed_signers.iter().map(String::as_str)),
        ];
        self.writer
            .write_record(cells.iter().map(|cell| neutralise(cell).into_owned()))
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|error| std::io::Error::other(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Evaluated, Identity, Outcome};
    use super::*;

    /// OWASP CSV Injection: every formula start is neutralised, other text is untouched.
    #[test]
    fn formula_starts_are_neutralised() {
        for hostile in [
            "=1+1",
            "+1",
            "-1+2",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
            "\u{ff1d}1+1",
        ] {
            assert_eq!(neutralise(hostile), format!("'{hostile}"), "{hostile:?}");
        }
        for plain in ["a@x", "2026-06-01", "", "'quoted", " =x"] {
            assert_eq!(neutralise(plain), plain);
        }
    }

    /// The header fields a sender controls (Message-ID, From) cannot become formulas, and
    /// neither can any other cell.
    #[test]
    fn every_cell_of_a_row_is_neutralised() {
        let row = Row {
            sequence: 0,
            source: "=source".into(),
            identity: Identity {
                message_id: Some("=HYPERLINK(\"http://x\")@x".into()),
                date: None,
                from: Some("=1+1@x".into()),
            },
            evaluated: Evaluated::single(Outcome::Reject, "-code", "+detail".into()),
            input_bytes: 0,
        };
        let mut report = CsvReport::new(Vec::new()).unwrap();
        report.write(&row).unwrap();
        let text = String::from_utf8(report.finish().unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[1], "'=HYPERLINK(\"http://x\")@x");
        for cell in record.iter() {
            assert!(!cell.starts_with(FORMULA_STARTS), "{cell:?}");
        }
    }
}
