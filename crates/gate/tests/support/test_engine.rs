//! A TEST decision engine: its verdict is whatever the message's `X-Test-Verdict` header
//! says. It exists only to drive the gate's protocol code in tests and in the end-to-end
//! script's test mode; it verifies nothing and must never face real mail.
//!
//! Header grammar (space-separated words):
//! `accept signer=S method=M role=R [delegation=D]` | `reject code=C` | `error` |
//! `not-calendar` | `panic` (the engine panics, to test that the gate isolates the
//! message), each optionally with `sleep-ms=N`; an accept optionally with `record=busy` or
//! `record=panic` (its recording fails or panics). No header: reject
//! `test.no-verdict-header`.
//! Verdicts say `event-state=checked` unless the engine was built `without_event_state`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use imipsec_gate::{
    Decide, DecideError, Envelope, EventState, GateVerdict, ItipSummary, Judged, Outcome, Reason,
    Recording, SmimeResult,
};
use time::OffsetDateTime;

/// The test engine; `records` lists recipients whose state was recorded.
#[derive(Debug, Default)]
pub struct HeaderDrivenTestEngine {
    /// Recipients whose accept was recorded, in order.
    pub records: Arc<Mutex<Vec<String>>>,
    /// How many times `decide` ran (once per message, whatever its recipients).
    pub decisions: Mutex<usize>,
    /// Behave like an engine without an event-state store.
    pub without_event_state: bool,
}

impl HeaderDrivenTestEngine {
    /// An engine that checks no event state (like the pipeline without a store).
    pub fn without_event_state() -> Self {
        Self {
            without_event_state: true,
            ..Self::default()
        }
    }

    fn event_state(&self) -> EventState {
        if self.without_event_state {
            EventState::NotChecked
        } else {
            EventState::Checked
        }
    }
}

fn directive(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let headers = text.split("\r\n\r\n").next().unwrap_or_default();
    headers.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("X-Test-Verdict")
            .then(|| value.trim().to_owned())
    })
}

fn word<'a>(words: &'a [&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Records one recipient into the engine's list (or fails, or panics, as told).
#[derive(Debug)]
struct TestRecording {
    records: Arc<Mutex<Vec<String>>>,
    recipient: String,
    fails: Option<String>,
}

impl Recording for TestRecording {
    fn record(self: Box<Self>) -> Result<(), DecideError> {
        match self.fails.as_deref() {
            Some("busy") => return Err(DecideError::StoreBusy),
            // The point of the directive: a bug reachable from one message.
            #[allow(clippy::panic)]
            Some("panic") => panic!("test recording told to panic"),
            _ => {}
        }
        if let Ok(mut records) = self.records.lock() {
            records.push(self.recipient);
        }
        Ok(())
    }
}

impl Decide for HeaderDrivenTestEngine {
    fn checks_event_state(&self) -> bool {
        !self.without_event_state
    }

    fn decide(
        &self,
        message: &[u8],
        _envelope: &Envelope,
        recipients: &[String],
        _at: OffsetDateTime,
    ) -> Vec<Result<Judged, DecideError>> {
        if let Ok(mut count) = self.decisions.lock() {
            *count += 1;
        }
        let Some(line) = directive(message) else {
            return recipients
                .iter()
                .map(|_| Ok(reject("no-calendar", self.event_state()).into()))
                .collect();
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(ms) = word(&words, "sleep-ms").and_then(|v| v.parse().ok()) {
            std::thread::sleep(Duration::from_millis(ms));
        }
        // `reject-rcpt=ADDRESS` (repeatable): that recipient is rejected (`code=`), the
        // others get the message's directive (per-recipient outcomes).
        let rejected_recipients: Vec<&str> = words
            .iter()
            .filter_map(|w| w.strip_prefix("reject-rcpt="))
            .collect();
        recipients
            .iter()
            .map(|recipient| {
                if rejected_recipients.contains(&recipient.as_str()) {
                    return Ok(reject(
                        word(&words, "code").unwrap_or("signer-not-correlated"),
                        self.event_state(),
                    )
                    .into());
                }
                self.decide_one(&words, recipient)
            })
            .collect()
    }
}

impl HeaderDrivenTestEngine {
    fn decide_one(&self, words: &[&str], recipient: &str) -> Result<Judged, DecideError> {
        match words.first().copied() {
            Some("accept") => Ok(Judged {
                verdict: GateVerdict {
                    outcome: Outcome::Accept,
                    reasons: vec![],
                    smime: SmimeResult::Pass,
                    signer: word(words, "signer").map(str::to_owned),
                    openpgp: None,
                    itip: vec![ItipSummary {
                        method: word(words, "method").unwrap_or("REQUEST").to_owned(),
                        role: word(words, "role").unwrap_or("organizer").to_owned(),
                        delegation: word(words, "delegation").map(str::to_owned),
                    }],
                    event_state: self.event_state(),
                },
                recording: Some(Box::new(TestRecording {
                    records: Arc::clone(&self.records),
                    recipient: recipient.to_owned(),
                    fails: word(words, "record").map(str::to_owned),
                })),
            }),
            Some("reject") => Ok(reject(
                word(words, "code").unwrap_or("signer-not-correlated"),
                self.event_state(),
            )
            .into()),
            Some("not-calendar") => Ok(GateVerdict {
                outcome: Outcome::NotCalendar,
                reasons: vec![],
                smime: SmimeResult::None,
                signer: None,
                openpgp: None,
                itip: vec![],
                event_state: self.event_state(),
            }
            .into()),
            Some("busy") => Err(DecideError::StoreBusy),
            // The point of the directive: a bug reachable from one message.
            #[allow(clippy::panic)]
            Some("panic") => panic!("test engine told to panic"),
            _ => Err(DecideError::Engine("test engine told to fail".into())),
        }
    }
}

#[allow(clippy::panic)]
fn reject(code: &str, event_state: EventState) -> GateVerdict {
    GateVerdict {
        outcome: Outcome::Reject,
        reasons: vec![Reason {
            // The engine speaks the pipeline's vocabulary: an unknown code is a test bug.
            code: imipsec_pipeline::Reason::from_code(code)
                .unwrap_or_else(|| panic!("test engine: unknown reason code {code:?}")),
            detail: "test engine verdict".to_owned(),
        }],
        smime: SmimeResult::Fail,
        signer: None,
        openpgp: None,
        itip: vec![],
        event_state,
    }
}
