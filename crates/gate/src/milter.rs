//! Milter mode (Sendmail milter protocol version 6, as spoken by Postfix `smtpd_milters`).
//!
//! The whole message is collected (up to [`Limits::message_bytes`]) and judged at end of
//! message; the reply is one of: continue untouched, continue with an
//! `Authentication-Results` header, `550 5.7.1`, quarantine, defuse, or `451 4.7.1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use miltr_common::actions::{Action as MilterAction, Continue, Replycode};
use miltr_common::commands::{Body, Header, Macro, Mail, Recipient};
use miltr_common::modifications::body::ReplaceBody;
use miltr_common::modifications::headers::{ChangeHeader, InsertHeader};
use miltr_common::modifications::quarantine::Quarantine;
use miltr_common::modifications::recipients::DeleteRecipient;
use miltr_common::modifications::{ModificationAction, ModificationResponse};
use miltr_common::optneg::{Capability, OptNeg, Protocol};
use miltr_server::Milter;

use crate::authres;
use crate::config::{LimitExceeded, OversizeAction, RejectAction, UndecryptableAction};
use crate::decide::{Envelope, GateVerdict, Outcome};
use crate::evaluate::{self, RecipientVerdict, Record};
use crate::metrics::Action;
use crate::mime;
use crate::server::Shared;

pub(crate) mod wire;

/// Largest `SMFIR_REPLBODY` chunk we send (the codec refuses packets above its buffer).
const BODY_CHUNK: usize = 60_000;

/// The conversation the gate asks for (issue 17), granted as far as the MTA offers it
/// ([`wire`]): the stages it does not read are not sent (connect, HELO, DATA, unknown
/// commands), and the stages it always answers with "continue" get no reply (MAIL, each
/// header field, end of headers, body chunks). RCPT keeps its reply (a recipient beyond
/// [`Limits::recipients`] is refused there), and end of message is always answered.
///
/// [`Limits::recipients`]: crate::config::Limits::recipients
const PROTOCOL: Protocol = Protocol::NO_CONNECT
    .union(Protocol::NO_HELO)
    .union(Protocol::NO_DATA)
    .union(Protocol::NO_UNKNOWN)
    .union(Protocol::NR_MAIL)
    .union(Protocol::NR_HEADER)
    .union(Protocol::NR_END_OF_HEADER)
    .union(Protocol::NR_BODY);

/// The milter state of one MTA connection.
pub(crate) struct GateMilter {
    shared: Arc<Shared>,
    /// Set between `MAIL` and the end-of-message reply; read by graceful shutdown.
    busy: Arc<AtomicBool>,
    envelope: Envelope,
    headers: Vec<(String, String)>,
    message: Vec<u8>,
    in_body: bool,
    exceeded: Option<LimitExceeded>,
    queue_id: String,
    decide_time: Option<std::time::Duration>,
}

/// Errors of the milter callbacks (none today: every problem becomes an SMTP reply).
#[derive(Debug, thiserror::Error)]
pub(crate) enum MilterCallbackError {}

impl GateMilter {
    pub(crate) fn new(shared: Arc<Shared>, busy: Arc<AtomicBool>) -> Self {
        Self {
            shared,
            busy,
            envelope: Envelope::default(),
            headers: Vec::new(),
            message: Vec::new(),
            in_body: false,
            exceeded: None,
            queue_id: String::new(),
            decide_time: None,
        }
    }

    fn reset(&mut self) {
        self.envelope = Envelope::default();
        self.headers.clear();
        self.message = Vec::new();
        self.in_body = false;
        self.exceeded = None;
        self.queue_id.clear();
        self.decide_time = None;
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.exceeded.is_some() {
            return;
        }
        let limit = self.shared.config.limits.message_bytes;
        if self.message.len() + bytes.len() > limit {
            self.exceeded = Some(LimitExceeded::MessageBytes { limit });
            self.message = Vec::new();
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    /// Our A-R value with milter folding (LF + TAB: Postfix turns it into CRLF).
    fn authres_value(&self, verdict: &GateVerdict) -> String {
        authres::header_value(self.shared.config.authserv_id(), verdict).replace("\r\n", "\n")
    }

    /// Our `Authentication-Results` header, inserted first (RFC 8601 §5: newest on top).
    fn push_authres(&self, mods: &mut Vec<ModificationAction>, verdict: &GateVerdict) {
        mods.push(
            InsertHeader::new(
                0,
                authres::HEADER.as_bytes(),
                self.authres_value(verdict).as_bytes(),
            )
            .into(),
        );
    }

    /// `chgheader` deletions of every incoming A-R header that claims our authserv-id,
    /// highest index first so the remaining indexes stay valid.
    fn strip_forged_authres(&self, builder: &mut Vec<ModificationAction>) {
        let mut index = 0u32;
        let mut forged = Vec::new();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case(authres::HEADER) {
                index += 1;
                if authres::claims_authserv_id(value, self.shared.config.authserv_id()) {
                    forged.push(index);
                }
            }
        }
        for index in forged.into_iter().rev() {
            builder.push(ChangeHeader::new(index, authres::HEADER.as_bytes(), b"").into());
        }
    }

    async fn decide(&mut self) -> (ModificationResponse, Action, Option<GateVerdict>) {
        if let Some(exceeded) = self.exceeded {
            let reply = match self.shared.config.on_oversize {
                OversizeAction::Reject => {
                    Replycode::new([5, 5, 2], [5, 3, 4], &format!("imipsec: {exceeded}"))
                }
                OversizeAction::Tempfail => {
                    Replycode::new([4, 5, 2], [4, 3, 4], &format!("imipsec: {exceeded}"))
                }
            };
            return (final_only(reply.into()), Action::Oversize, None);
        }
        let message = Arc::new(std::mem::take(&mut self.message));
        let envelope = Arc::new(self.envelope.clone());
        let recipients = self.envelope.recipients.clone();
        // Per-recipient outcomes (issue #15): when the gate rejects (`on_reject = reject`),
        // a recipient whose verdict is reject (e.g. a stale SEQUENCE in that recipient's own
        // state) is removed from the envelope (`SMFIR_DELRCPT`) and the others receive the
        // message; only when every recipient is rejected is the message rejected. The
        // quarantine, monitor and defuse modes act on the whole message as before. The
        // accepted recipients' event state is recorded within the judgement, exactly when
        // the message as a whole is accepted (`evaluate::message_accepted`, the rule the
        // answer below follows).
        let enforce = self.shared.config.on_reject == RejectAction::Reject;
        let judgement = self
            .shared
            .evaluator
            .judge(
                Arc::clone(&message),
                Arc::clone(&envelope),
                recipients.clone(),
                Record::IfMessageAccepted { enforce },
            )
            .await;
        let removable = evaluate::rejects_removable(&judgement.verdicts, enforce);
        let mut removed: Vec<(String, GateVerdict)> = Vec::new();
        let mut rejected: Option<GateVerdict> = None;
        let mut undecrypted: Option<GateVerdict> = None;
        let mut accepted: Option<GateVerdict> = None;
        let mut not_calendar: Option<GateVerdict> = None;
        let mut failure = None;
        let mut unrecorded = None;
        for (verdict, recipient) in judgement.verdicts.into_iter().zip(&recipients) {
            match verdict {
                RecipientVerdict::NotCalendar(None) => {}
                RecipientVerdict::NotCalendar(Some(verdict)) => {
                    not_calendar.get_or_insert(verdict);
                }
                RecipientVerdict::Failed(error) => {
                    failure.get_or_insert(error);
                }
                RecipientVerdict::Unrecorded(verdict, error) => {
                    unrecorded.get_or_insert((verdict, error));
                }
                RecipientVerdict::Judged(verdict, _) => match verdict.outcome {
                    Outcome::Reject if removable => removed.push((recipient.clone(), verdict)),
                    Outcome::Reject => {
                        rejected.get_or_insert(verdict);
                    }
                    Outcome::NotDecrypted => {
                        undecrypted.get_or_insert(verdict);
                    }
                    Outcome::Accept | Outcome::NotCalendar => {
                        accepted.get_or_insert(verdict);
                    }
                },
            }
        }
        self.decide_time = Some(judgement.elapsed);
        if let Some(error) = failure {
            tracing::warn!(queue_id = %self.queue_id, %error, "no verdict");
            return (tempfail(), Action::Tempfail, None);
        }
        if let Some((verdict, error)) = unrecorded {
            tracing::warn!(queue_id = %self.queue_id, %error, "recording failed");
            return (tempfail(), Action::Tempfail, Some(verdict));
        }
        let mut mods = Vec::new();
        self.strip_forged_authres(&mut mods);
        for (recipient, verdict) in &removed {
            tracing::info!(
                queue_id = %self.queue_id,
                recipient = %recipient,
                code = %verdict.primary_code(),
                "recipient rejected and removed; delivered to the others"
            );
            mods.push(DeleteRecipient::new(recipient.as_bytes()).into());
        }
        let monitor = self.shared.config.on_reject == RejectAction::Monitor;
        // Not decrypted (no key) and nothing calendar outside the encryption: the rollout
        // choice `on_undecryptable`. A reject or quarantine here is turned into a tagged
        // delivery by the monitor mode like any other.
        if rejected.is_none()
            && let Some(verdict) = undecrypted
        {
            let code = safe_code(verdict.primary_code());
            return match (self.shared.config.on_undecryptable, monitor) {
                (UndecryptableAction::Pass, _) => {
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::PassNotDecrypted, Some(verdict))
                }
                (UndecryptableAction::Reject | UndecryptableAction::Quarantine, true) => {
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::MonitorWouldReject, Some(verdict))
                }
                (UndecryptableAction::Reject, false) => (
                    final_only(
                        Replycode::new([5, 5, 0], [5, 7, 1], crate::server::REJECT_TEXT).into(),
                    ),
                    Action::Reject,
                    Some(verdict),
                ),
                (UndecryptableAction::Quarantine, false) => {
                    mods.push(Quarantine::new(format!("imipsec {code}").as_bytes()).into());
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::Quarantine, Some(verdict))
                }
            };
        }
        if let Some(verdict) = rejected {
            let code = safe_code(verdict.primary_code());
            return match self.shared.config.on_reject {
                RejectAction::Reject => (
                    final_only(
                        Replycode::new([5, 5, 0], [5, 7, 1], crate::server::REJECT_TEXT).into(),
                    ),
                    Action::Reject,
                    Some(verdict),
                ),
                RejectAction::Quarantine => {
                    mods.push(Quarantine::new(format!("imipsec {code}").as_bytes()).into());
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::Quarantine, Some(verdict))
                }
                // Rollout: delivered as it is, with the real result (`x-imip=fail`), and
                // logged as what `reject` would have done. No event state is recorded.
                RejectAction::Monitor => {
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::MonitorWouldReject, Some(verdict))
                }
                RejectAction::Defuse => {
                    let defused = {
                        let message = Arc::clone(&message);
                        tokio::task::spawn_blocking(move || mime::defuse(&message)).await
                    };
                    let Ok(defused) = defused else {
                        return (tempfail(), Action::Tempfail, Some(verdict));
                    };
                    let Some(defused) = defused else {
                        // The calendar could not be shown defused: never deliver it as it
                        // is (fail closed), hold it for a human instead.
                        tracing::warn!(queue_id = %self.queue_id, "defuse failed; quarantined");
                        mods.push(Quarantine::new(format!("imipsec {code}").as_bytes()).into());
                        self.push_authres(&mut mods, &verdict);
                        return (build(mods), Action::Quarantine, Some(verdict));
                    };
                    if let Some((from, to)) = &defused.top_level {
                        self.rename_content_type(&mut mods, from, to);
                    }
                    for chunk in defused.body().chunks(BODY_CHUNK) {
                        mods.push(ReplaceBody::new(chunk).into());
                    }
                    self.push_authres(&mut mods, &verdict);
                    (build(mods), Action::Defuse, Some(verdict))
                }
            };
        }
        let Some(verdict) = accepted else {
            // No calendar data: untouched when the gate's own MIME walk saw none, with
            // `x-imip=none` when the engine had to look inside S/MIME.
            if let Some(verdict) = not_calendar {
                self.push_authres(&mut mods, &verdict);
                return (build(mods), Action::Pass, Some(verdict));
            }
            return (build(mods), Action::Pass, None);
        };
        // Accepted as a whole: the judgement recorded the event state (`message_accepted`).
        self.push_authres(&mut mods, &verdict);
        (build(mods), Action::Accept, Some(verdict))
    }

    fn rename_content_type(&self, mods: &mut Vec<ModificationAction>, from: &str, to: &str) {
        let mut index = 0u32;
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("Content-Type") {
                index += 1;
                // `get`, not `replace_range`: a range off a char boundary is skipped, never
                // a panic on peer input.
                let renamed =
                    mime::find_ignore_case(value.as_bytes(), from.as_bytes()).and_then(|at| {
                        let before = value.get(..at)?;
                        let after = value.get(at.checked_add(from.len())?..)?;
                        Some(format!("{before}{to}{after}"))
                    });
                if let Some(renamed) = renamed {
                    mods.push(ChangeHeader::new(index, b"Content-Type", renamed.as_bytes()).into());
                }
            }
        }
    }
}

fn final_only(action: MilterAction) -> ModificationResponse {
    ModificationResponse::builder().build(action)
}

fn build(mods: Vec<ModificationAction>) -> ModificationResponse {
    let mut builder = ModificationResponse::builder();
    for modification in mods {
        builder.push(modification);
    }
    builder.contin()
}

fn tempfail() -> ModificationResponse {
    final_only(
        Replycode::new(
            [4, 5, 1],
            [4, 7, 1],
            "imipsec: cannot evaluate calendar message now, try again later",
        )
        .into(),
    )
}

/// Reason codes go into SMTP reply text: keep them to a safe alphabet.
fn safe_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        .take(80)
        .collect()
}

fn strip_angle(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

#[async_trait]
impl Milter for GateMilter {
    type Error = MilterCallbackError;

    async fn option_negotiation(
        &mut self,
        theirs: OptNeg,
    ) -> Result<OptNeg, miltr_server::Error<Self::Error>> {
        let ours = OptNeg {
            capabilities: Capability::SMFIF_ADDHDRS
                | Capability::SMFIF_CHGHDRS
                | Capability::SMFIF_CHGBODY
                | Capability::SMFIF_QUARANTINE
                | Capability::SMFIF_DELRCPT,
            protocol: PROTOCOL,
            ..OptNeg::default()
        };
        ours.merge_compatible(&theirs)
            .map_err(|error| miltr_server::Error::Codec(error.into()))
    }

    async fn macro_(&mut self, macros: Macro) -> Result<(), Self::Error> {
        for (name, value) in macros.macros() {
            if name == b"i" || name == b"{i}" {
                self.queue_id = String::from_utf8_lossy(value).chars().take(64).collect();
            }
        }
        Ok(())
    }

    async fn mail(&mut self, mail: Mail) -> Result<MilterAction, Self::Error> {
        self.reset();
        self.busy.store(true, Ordering::SeqCst);
        self.envelope.mail_from = strip_angle(&mail.sender());
        Ok(Continue.into())
    }

    async fn rcpt(&mut self, recipient: Recipient) -> Result<MilterAction, Self::Error> {
        let limit = self.shared.config.limits.recipients;
        if self.envelope.recipients.len() >= limit {
            return Ok(Replycode::new([4, 5, 2], [4, 5, 3], "imipsec: too many recipients").into());
        }
        self.envelope
            .recipients
            .push(strip_angle(&recipient.recipient()));
        Ok(Continue.into())
    }

    async fn header(&mut self, header: Header) -> Result<MilterAction, Self::Error> {
        let limit = self.shared.config.limits.headers;
        if self.headers.len() >= limit {
            self.exceeded
                .get_or_insert(LimitExceeded::Headers { limit });
            return Ok(Continue.into());
        }
        let name = header.name().into_owned();
        let value = header.value().into_owned();
        // Postfix sends folded values with bare LF; the message we judge uses CRLF.
        let line = format!(
            "{name}: {}\r\n",
            value.replace("\r\n", "\n").replace('\n', "\r\n")
        );
        self.append(line.as_bytes());
        if self.exceeded.is_none() {
            self.headers.push((name, value));
        }
        Ok(Continue.into())
    }

    async fn end_of_header(&mut self) -> Result<MilterAction, Self::Error> {
        self.append(b"\r\n");
        self.in_body = true;
        Ok(Continue.into())
    }

    async fn body(&mut self, body: Body) -> Result<MilterAction, Self::Error> {
        self.append(body.as_bytes());
        Ok(Continue.into())
    }

    async fn end_of_body(&mut self) -> Result<ModificationResponse, Self::Error> {
        let (response, action, verdict) = self.decide().await;
        crate::server::audit(
            &self.shared,
            "milter",
            &self.queue_id,
            &self.envelope,
            action,
            verdict.as_ref(),
            self.decide_time,
        );
        self.reset();
        self.busy.store(false, Ordering::SeqCst);
        Ok(response)
    }

    async fn abort(&mut self) -> Result<(), Self::Error> {
        self.reset();
        self.busy.store(false, Ordering::SeqCst);
        Ok(())
    }
}
