//! After `DATA`: judge the message once for every recipient and record the accepted
//! recipients' event state (in the same blocking task, before delivering, idempotently),
//! then run the backend transactions and give one reply per recipient.

use std::sync::Arc;

use crate::authres;
use crate::config::{RejectAction, UndecryptableAction};
use crate::decide::{Envelope, GateVerdict, Outcome};
use crate::evaluate::{RecipientVerdict, Record};
use crate::metrics::Action;
use crate::mime;
use crate::server::audit;

use super::backend::{BackendError, Reply};
use super::{Disposition, Session, rejected};

impl Session {
    /// `message` with our Authentication-Results field on top, as one copy to hand on.
    fn with_authres(&self, verdict: &GateVerdict, message: &[u8]) -> Arc<Vec<u8>> {
        let mut out = format!(
            "{}: {}\r\n",
            authres::HEADER,
            authres::header_value(self.shared.config.authserv_id(), verdict)
        )
        .into_bytes();
        out.extend_from_slice(message);
        Arc::new(out)
    }

    /// Judge, then deliver each recipient's copy and collect one reply per recipient.
    pub(super) async fn deliver(&mut self, raw: Vec<u8>) -> Result<Vec<Reply>, BackendError> {
        let shared = Arc::clone(&self.shared);
        let stripped = Arc::new(authres::strip_own(&raw, shared.config.authserv_id()));
        let raw = Arc::new(raw);
        let envelope = Arc::new(self.envelope.clone());
        let judgement = shared
            .evaluator
            .judge(
                Arc::clone(&raw),
                Arc::clone(&envelope),
                self.envelope.recipients.clone(),
                Record::OnAccept,
            )
            .await;
        let mut dispositions = Vec::with_capacity(judgement.verdicts.len());
        let mut actions = Vec::with_capacity(judgement.verdicts.len());
        let mut defused_cache: Option<Option<Arc<Vec<u8>>>> = None;
        for verdict in &judgement.verdicts {
            let (disposition, action) = match verdict {
                RecipientVerdict::NotCalendar(None) => (
                    Disposition::Deliver {
                        message: Arc::clone(&stripped),
                    },
                    Action::Pass,
                ),
                RecipientVerdict::NotCalendar(Some(verdict)) => (
                    Disposition::Deliver {
                        message: self.with_authres(verdict, &stripped),
                    },
                    Action::Pass,
                ),
                RecipientVerdict::Failed(error) => {
                    tracing::warn!(%error, "no verdict");
                    (
                        Disposition::Answer(Reply::new(
                            451,
                            "4.7.1 imipsec: cannot evaluate calendar message now, try again later",
                        )),
                        Action::Tempfail,
                    )
                }
                // Record before delivering (issue #15), done by `judge` (`Record::OnAccept`):
                // the event state of an accepted recipient is stored first, keyed by the
                // message's digest, so a crash or a backend failure between the two steps
                // loses nothing (the retry of the same message finds its own record and is
                // accepted again) and duplicates nothing (the record is not written twice).
                // A recipient whose state could not be recorded is not delivered: 451.
                RecipientVerdict::Unrecorded(_, error) => {
                    tracing::warn!(%error, "event state not recorded; not delivered");
                    (
                        Disposition::Answer(Reply::new(
                            451,
                            "4.7.1 imipsec: cannot record calendar state now, try again later",
                        )),
                        Action::Tempfail,
                    )
                }
                RecipientVerdict::Judged(verdict, _) if verdict.outcome == Outcome::Accept => {
                    let message = self.with_authres(verdict, &stripped);
                    (Disposition::Deliver { message }, Action::Accept)
                }
                RecipientVerdict::Judged(verdict, _)
                    if verdict.outcome == Outcome::NotDecrypted =>
                {
                    let monitor = shared.config.on_reject == RejectAction::Monitor;
                    let tagged = Disposition::Deliver {
                        message: self.with_authres(verdict, &stripped),
                    };
                    match (shared.config.on_undecryptable, monitor) {
                        (UndecryptableAction::Pass, _) => (tagged, Action::PassNotDecrypted),
                        (_, true) => (tagged, Action::MonitorWouldReject),
                        (UndecryptableAction::Reject, false) => {
                            (Disposition::Answer(rejected()), Action::Reject)
                        }
                        (UndecryptableAction::Quarantine, false) => {
                            let message = self.with_authres(verdict, &stripped);
                            (Disposition::Quarantine { message }, Action::Quarantine)
                        }
                    }
                }
                RecipientVerdict::Judged(verdict, _) => match shared.config.on_reject {
                    RejectAction::Reject => (Disposition::Answer(rejected()), Action::Reject),
                    // Rollout: delivered with the real result (`x-imip=fail`), logged as
                    // what `reject` would have done; no event state is recorded.
                    RejectAction::Monitor => (
                        Disposition::Deliver {
                            message: self.with_authres(verdict, &stripped),
                        },
                        Action::MonitorWouldReject,
                    ),
                    RejectAction::Quarantine => {
                        let message = self.with_authres(verdict, &stripped);
                        (Disposition::Quarantine { message }, Action::Quarantine)
                    }
                    RejectAction::Defuse => {
                        let defused = defused_cache
                            .get_or_insert_with(|| {
                                // A panic while defusing leaves the message undefused:
                                // quarantine or refuse below, never deliver it as is.
                                std::panic::catch_unwind(|| mime::defuse(&stripped))
                                    .ok()
                                    .flatten()
                                    .map(|d| Arc::new(d.message))
                            })
                            .clone();
                        match defused {
                            Some(body) => {
                                let message = self.with_authres(verdict, &body);
                                (Disposition::Deliver { message }, Action::Defuse)
                            }
                            // The calendar could not be shown defused: never deliver it as
                            // it is (fail closed). Quarantine when a quarantine address is
                            // configured, else refuse (the sender is told; nothing is lost).
                            None if self.config.quarantine_address.is_some() => {
                                let message = self.with_authres(verdict, &stripped);
                                (Disposition::Quarantine { message }, Action::Quarantine)
                            }
                            None => (Disposition::Answer(rejected()), Action::Reject),
                        }
                    }
                },
            };
            dispositions.push(disposition);
            actions.push(action);
        }
        let replies = self.execute(&dispositions).await?;
        for (index, (action, recipient)) in
            actions.iter().zip(&self.envelope.recipients).enumerate()
        {
            let verdict = match judgement.verdicts.get(index) {
                Some(
                    RecipientVerdict::Judged(verdict, _)
                    | RecipientVerdict::Unrecorded(verdict, _)
                    | RecipientVerdict::NotCalendar(Some(verdict)),
                ) => Some(verdict),
                _ => None,
            };
            let single = Envelope {
                mail_from: self.envelope.mail_from.clone(),
                recipients: vec![recipient.clone()],
            };
            // A backend refusal overrides what we intended.
            let action = match replies.get(index) {
                Some(reply)
                    if !reply.is_positive()
                        && !matches!(action, Action::Reject | Action::Tempfail) =>
                {
                    Action::Tempfail
                }
                _ => *action,
            };
            audit(
                &shared,
                "lmtp",
                "",
                &single,
                action,
                verdict,
                Some(judgement.elapsed),
            );
        }
        Ok(replies)
    }

    /// Run the backend transactions the dispositions need; one reply per recipient.
    async fn execute(&mut self, dispositions: &[Disposition]) -> Result<Vec<Reply>, BackendError> {
        let count = dispositions.len();
        let mut replies: Vec<Option<Reply>> = vec![None; count];
        // Groups of recipients receiving identical bytes at one mailbox path.
        let mut groups: Vec<(Arc<Vec<u8>>, bool, Vec<usize>)> = Vec::new();
        for (index, disposition) in dispositions.iter().enumerate() {
            match disposition {
                Disposition::Answer(reply) => {
                    if let Some(slot) = replies.get_mut(index) {
                        *slot = Some(reply.clone());
                    }
                }
                Disposition::Deliver { message, .. } | Disposition::Quarantine { message } => {
                    let quarantine = matches!(disposition, Disposition::Quarantine { .. });
                    match groups.iter_mut().find(|(bytes, q, _)| {
                        *q == quarantine && (Arc::ptr_eq(bytes, message) || **bytes == **message)
                    }) {
                        Some((_, _, members)) => members.push(index),
                        None => groups.push((Arc::clone(message), quarantine, vec![index])),
                    }
                }
            }
        }
        let single_pass = groups.len() == 1
            && groups
                .first()
                .is_some_and(|(_, quarantine, members)| !quarantine && members.len() == count);
        if single_pass {
            // The backend already holds MAIL and every RCPT: send the data as is.
            if let Some((message, _, members)) = groups.first() {
                let answers = self.backend.data(message, members.len()).await?;
                return Ok(answers);
            }
        }
        // Otherwise start over on the backend, one transaction per group.
        self.backend.command(b"RSET\r\n").await?;
        let mail_line = self
            .mail_line
            .clone()
            .unwrap_or_else(|| b"MAIL FROM:<>\r\n".to_vec());
        for (message, quarantine, members) in &groups {
            let answers = self
                .transaction(&mail_line, message, *quarantine, members)
                .await?;
            for (member, answer) in members.iter().zip(answers) {
                if let Some(slot) = replies.get_mut(*member) {
                    *slot = Some(answer);
                }
            }
        }
        Ok(replies
            .into_iter()
            .map(|reply| reply.unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: internal error")))
            .collect())
    }

    /// One backend transaction delivering `message` to `members` (or, for quarantine, to
    /// the quarantine mailbox on their behalf). Returns one reply per member.
    async fn transaction(
        &mut self,
        mail_line: &[u8],
        message: &Arc<Vec<u8>>,
        quarantine: bool,
        members: &[usize],
    ) -> Result<Vec<Reply>, BackendError> {
        let mail = self.backend.command(mail_line).await?;
        if !mail.is_positive() {
            return Ok(vec![mail; members.len()]);
        }
        if quarantine {
            let address = self.config.quarantine_address.clone().unwrap_or_default();
            let rcpt = self
                .backend
                .command(format!("RCPT TO:<{address}>\r\n").as_bytes())
                .await?;
            if !rcpt.is_positive() {
                // Fail closed (Postfix keeps the message and retries), and say why: a
                // quarantine mailbox the backend does not know defers every rejected
                // message until the address is fixed.
                tracing::warn!(
                    quarantine_address = %address,
                    reply = %rcpt.summary(),
                    "the backend refused the quarantine mailbox; message deferred \
                     (check lmtp.quarantine_address)"
                );
                self.backend.command(b"RSET\r\n").await?;
                return Ok(vec![
                    Reply::new(
                        451,
                        "4.3.0 imipsec: quarantine mailbox refused the message"
                    );
                    members.len()
                ]);
            }
            let mut replies = self.backend.data(message, 1).await?;
            let reply = replies
                .pop()
                .unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: no reply"));
            let answer = if reply.is_positive() {
                Reply::new(250, "2.1.5 imipsec: held in quarantine")
            } else {
                tracing::warn!(
                    quarantine_address = %address,
                    reply = %reply.summary(),
                    "delivery to the quarantine mailbox failed; message deferred"
                );
                Reply::new(451, "4.3.0 imipsec: quarantine delivery failed")
            };
            return Ok(vec![answer; members.len()]);
        }
        let mut answers: Vec<Option<Reply>> = vec![None; members.len()];
        let mut accepted = Vec::new();
        for (slot, member) in members.iter().enumerate() {
            let Some(line) = self.rcpt_lines.get(*member).cloned() else {
                continue;
            };
            let reply = self.backend.command(&line).await?;
            if reply.is_positive() {
                accepted.push(slot);
            } else if let Some(answer) = answers.get_mut(slot) {
                *answer = Some(reply);
            }
        }
        if accepted.is_empty() {
            self.backend.command(b"RSET\r\n").await?;
        } else {
            let data_replies = self.backend.data(message, accepted.len()).await?;
            for (slot, reply) in accepted.into_iter().zip(data_replies) {
                if let Some(answer) = answers.get_mut(slot) {
                    *answer = Some(reply);
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Reply::new(451, "4.3.0 imipsec: internal error")))
            .collect())
    }
}
