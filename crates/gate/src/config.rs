//! The `[gate]` section of the imipsec configuration file.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of the gate, deserialisable from the `[gate]` table of the shared TOML
/// configuration. Every field has a secure default, so an empty table is valid (and runs
/// nothing until `milter` or `lmtp` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// The RFC 8601 section 2.5 `authserv-id` this gate writes into `Authentication-Results`.
    /// Incoming headers carrying it are deleted: only this gate may speak for it. Required
    /// (no default: a guessed `localhost` would make every reader trust the wrong name);
    /// [`GateConfig::validate`] refuses a gate without one.
    pub authserv_id: Option<String>,
    /// Milter listener (Postfix `smtpd_milters`), if enabled.
    pub milter: Option<MilterConfig>,
    /// LMTP proxy (in front of Dovecot or Cyrus LMTP), if enabled.
    pub lmtp: Option<LmtpConfig>,
    /// What happens to calendar mail the decision engine rejects.
    pub on_reject: RejectAction,
    /// What happens to a message the gate cannot decrypt (no key for any recipient) and
    /// whose visible parts carry no calendar data.
    pub on_undecryptable: UndecryptableAction,
    /// Allow the milter and the LMTP proxy to listen on a non-loopback address. Whoever can
    /// connect to the LMTP proxy can deliver into the mailbox server, and whoever can
    /// connect to the milter can probe its verdicts: off by default.
    pub allow_remote_clients: bool,
    /// What happens to a message larger than [`Limits::message_bytes`].
    pub on_oversize: OversizeAction,
    /// Loopback address of the Prometheus-style text metrics endpoint, if enabled.
    pub metrics_listen: Option<SocketAddr>,
    /// Resource bounds per connection and per process.
    pub limits: Limits,
    /// DANGER: run without an event-state store. Organizer pinning and replay detection
    /// are then skipped, so a validly signed CANCEL or REQUEST for another organizer's UID
    /// is accepted. Without a store and without this key the gate refuses to start; with
    /// it, every verdict says `policy.event-state=not-checked`.
    pub danger_no_event_state: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            authserv_id: None,
            milter: None,
            lmtp: None,
            on_reject: RejectAction::Reject,
            on_undecryptable: UndecryptableAction::Pass,
            allow_remote_clients: false,
            on_oversize: OversizeAction::Tempfail,
            metrics_listen: None,
            limits: Limits::default(),
            danger_no_event_state: false,
        }
    }
}

/// Where the milter listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MilterConfig {
    /// TCP address, e.g. `127.0.0.1:8891` (Postfix: `smtpd_milters = inet:127.0.0.1:8891`).
    pub listen: SocketAddr,
}

/// Where the LMTP proxy listens and where it forwards to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmtpConfig {
    /// TCP address the MTA delivers to (Postfix: `lmtp:inet:127.0.0.1:24`).
    pub listen: SocketAddr,
    /// The real LMTP server (Dovecot `lmtp`, Cyrus `lmtpd`).
    pub backend: SocketAddr,
    /// Mailbox that receives quarantined messages when `on_reject = "quarantine"`.
    pub quarantine_address: Option<String>,
    /// Host name announced in the greeting and `LHLO` reply.
    #[serde(default = "default_hostname")]
    pub hostname: String,
}

fn default_hostname() -> String {
    "localhost".to_owned()
}

/// The action for a rejected calendar message. Which one to pick depends on the calendar
/// server behind the gate (see the crate README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectAction {
    /// Refuse it with `550 5.7.1` naming the reason code.
    Reject,
    /// Accept it but hold it: the milter quarantine action (Postfix hold queue), or
    /// delivery to [`LmtpConfig::quarantine_address`] in LMTP mode.
    Quarantine,
    /// Deliver it with `x-imip=fail` and every calendar part renamed to
    /// `application/x-imipsec-defused-calendar`, for servers that ignore
    /// `Authentication-Results`.
    Defuse,
    /// Rollout mode: deliver every message, with our `Authentication-Results` carrying the
    /// real result (`x-imip=fail` and `policy.reason`), and log `action=monitor-would-reject`
    /// for what [`RejectAction::Reject`] would have refused. Protects nothing by itself:
    /// the calendar server must act only on `x-imip=pass`.
    Monitor,
}

/// The action for a message the gate cannot decrypt and that shows no calendar data
/// outside the encryption. Whatever is chosen, the SMTP reply never says why (one `550`
/// text for every refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndecryptableAction {
    /// Deliver it with `x-imip=none (not decrypted)`: the calendar server must not act on
    /// calendar data without `x-imip=pass` (ordinary encrypted mail stays deliverable).
    Pass,
    /// Refuse it (`550 5.7.1`, the same text as every refusal).
    Reject,
    /// Hold it (milter quarantine; [`LmtpConfig::quarantine_address`] in LMTP mode).
    Quarantine,
}

/// The action for a message beyond [`Limits::message_bytes`]: it cannot be inspected,
/// so it is never passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OversizeAction {
    /// `552 5.3.4`: permanent.
    Reject,
    /// `452 4.3.4`: the sender retries (and an operator may raise the limit meanwhile).
    Tempfail,
}

/// A configuration the gate refuses to run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither `milter` nor `lmtp` is configured.
    #[error("nothing to serve: configure [gate.milter] and/or [gate.lmtp]")]
    NothingToServe,
    /// No `authserv_id`, or an empty or unusable one.
    #[error(
        "[gate] authserv_id is required: the RFC 8601 name this gate writes into \
         Authentication-Results (e.g. authserv_id = \"mx.example.org\", the host's name)"
    )]
    MissingAuthservId,
    /// An `authserv_id` that is not an RFC 2045 token (it could not be read back).
    #[error("[gate] authserv_id {0:?} is not a plain token (letters, digits, '.', '-', '_')")]
    BadAuthservId(String),
    /// A milter or LMTP listener on a non-loopback address without `allow_remote_clients`.
    #[error(
        "[gate] {listener} listens on {address}, which is not a loopback address: anyone \
         who can connect could {consequence}; listen on 127.0.0.1 or ::1, or set [gate] \
         allow_remote_clients = true and firewall the port"
    )]
    RemoteListener {
        /// `milter.listen` or `lmtp.listen`.
        listener: &'static str,
        /// The address.
        address: SocketAddr,
        /// What a stranger could do.
        consequence: &'static str,
    },
    /// The metrics endpoint has no authentication, so it may only listen on loopback.
    #[error("metrics_listen {0} is not a loopback address")]
    MetricsNotLoopback(SocketAddr),
    /// A quarantine action in LMTP mode without a quarantine mailbox.
    #[error("lmtp with {key} = \"quarantine\" needs lmtp.quarantine_address")]
    MissingQuarantineAddress {
        /// `on_reject` or `on_undecryptable`.
        key: &'static str,
    },
    /// An `lmtp.quarantine_address` that is not one bare address: it is written into the
    /// backend's `RCPT TO:<...>`, where a line break or a `>` would add commands of its own
    /// (a second recipient for the quarantined message).
    #[error("lmtp.quarantine_address {address:?} is not one bare address (user@domain): {reason}")]
    BadQuarantineAddress {
        /// The configured value.
        address: String,
        /// Why it is not one.
        reason: String,
    },
    /// An `lmtp.hostname` that is not printable ASCII without spaces: it is written into
    /// the greeting and the `LHLO` reply.
    #[error("lmtp.hostname {0:?} is not a host name (printable ASCII, no spaces)")]
    BadHostname(String),
}

impl GateConfig {
    /// The authserv-id, once [`Self::validate`] has accepted the configuration.
    pub fn authserv_id(&self) -> &str {
        self.authserv_id.as_deref().unwrap_or_default()
    }

    /// Check everything about the configuration that needs no socket, engine or file:
    /// something to serve, an authserv-id, listeners on loopback (unless
    /// `allow_remote_clients`), metrics on loopback, a quarantine mailbox where needed.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.milter.is_none() && self.lmtp.is_none() {
            return Err(ConfigError::NothingToServe);
        }
        match self.authserv_id.as_deref().map(str::trim) {
            None | Some("") => return Err(ConfigError::MissingAuthservId),
            Some(id) if !is_authserv_token(id) => {
                return Err(ConfigError::BadAuthservId(id.to_owned()));
            }
            Some(_) => {}
        }
        if !self.allow_remote_clients {
            if let Some(milter) = &self.milter
                && !milter.listen.ip().is_loopback()
            {
                return Err(ConfigError::RemoteListener {
                    listener: "milter.listen",
                    address: milter.listen,
                    consequence: "probe the gate's verdicts and rewrite headers through it",
                });
            }
            if let Some(lmtp) = &self.lmtp
                && !lmtp.listen.ip().is_loopback()
            {
                return Err(ConfigError::RemoteListener {
                    listener: "lmtp.listen",
                    address: lmtp.listen,
                    consequence: "deliver straight into the mailbox server",
                });
            }
        }
        if let Some(address) = self.metrics_listen
            && !address.ip().is_loopback()
        {
            return Err(ConfigError::MetricsNotLoopback(address));
        }
        if let Some(lmtp) = &self.lmtp {
            if let Some(address) = &lmtp.quarantine_address
                && let Err(error) = imipsec_types::AddrSpec::parse(address)
            {
                return Err(ConfigError::BadQuarantineAddress {
                    address: address.clone(),
                    reason: error.to_string(),
                });
            }
            if lmtp.hostname.is_empty() || !lmtp.hostname.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::BadHostname(lmtp.hostname.clone()));
            }
        }
        if let Some(lmtp) = &self.lmtp
            && lmtp.quarantine_address.is_none()
        {
            if self.on_reject == RejectAction::Quarantine {
                return Err(ConfigError::MissingQuarantineAddress { key: "on_reject" });
            }
            if self.on_undecryptable == UndecryptableAction::Quarantine {
                return Err(ConfigError::MissingQuarantineAddress {
                    key: "on_undecryptable",
                });
            }
        }
        Ok(())
    }

    /// What a valid configuration does that an operator may not have meant, one sentence
    /// each (printed by `--check-config`, logged when the gate starts and reloads).
    ///
    /// The LMTP proxy refuses after the queue: for every message it refuses the MTA writes
    /// a bounce to the envelope sender, which for a forged invitation the forger chose
    /// (backscatter to someone else). The milter refuses during the SMTP session and makes
    /// no bounce.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.lmtp.is_some() {
            let bouncing = [
                ("on_reject", self.on_reject == RejectAction::Reject),
                (
                    "on_undecryptable",
                    self.on_undecryptable == UndecryptableAction::Reject,
                ),
            ];
            for (key, _) in bouncing.iter().filter(|(_, reject)| *reject) {
                warnings.push(format!(
                    "lmtp with {key} = \"reject\": the LMTP proxy refuses after the queue, so \
                     the MTA bounces every refused message to its envelope sender, which a \
                     forger chooses (backscatter); \"quarantine\" (lmtp.quarantine_address) \
                     sends nothing back"
                ));
            }
            // No quarantine for these: a message too large to inspect is never passed. The
            // MTA can refuse it during the SMTP session instead, without any bounce.
            if self.on_oversize == OversizeAction::Reject {
                warnings.push(format!(
                    "lmtp with on_oversize = \"reject\": the LMTP proxy refuses after the \
                     queue, so the MTA bounces every message above limits.message_bytes \
                     ({} bytes) to its envelope sender, which a forger chooses (backscatter); \
                     set the MTA's own size limit (Postfix: message_size_limit) to at most \
                     that, so that such messages are refused during the SMTP session",
                    self.limits.message_bytes
                ));
            }
        }
        warnings
    }
}

/// An authserv-id we write bare and can read back: an RFC 2045 token of the characters
/// host names use.
fn is_authserv_token(id: &str) -> bool {
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Named resource bounds. Every limit has its own [`LimitExceeded`] variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest message kept for inspection (headers and body). Set it at least as large as
    /// Postfix `message_size_limit` (default 10240000) or large mail is refused.
    pub message_bytes: usize,
    /// Longest LMTP command or reply line, CRLF included.
    pub command_line_bytes: usize,
    /// Longest milter packet accepted from the MTA.
    pub milter_packet_bytes: usize,
    /// Most recipients per transaction.
    pub recipients: usize,
    /// Most header fields per message in milter mode.
    pub headers: usize,
    /// Most simultaneous connections per listener; more are refused.
    pub connections: usize,
    /// Seconds a peer may stay silent while we wait for its next bytes.
    pub idle_timeout_secs: u64,
    /// Seconds one LMTP command line may take to arrive in full (slow drip defence).
    pub line_timeout_secs: u64,
    /// Seconds a DATA section may take to arrive in full.
    pub data_timeout_secs: u64,
    /// Seconds the decision engine may take for one message before we tempfail it.
    pub decide_timeout_secs: u64,
    /// Seconds to wait for the LMTP backend's replies.
    pub backend_timeout_secs: u64,
    /// Seconds transactions in flight may take to finish after SIGTERM.
    pub drain_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            message_bytes: 10_240_000,
            command_line_bytes: 4096,
            milter_packet_bytes: 1 << 17,
            recipients: 1000,
            headers: 1000,
            connections: 256,
            idle_timeout_secs: 300,
            line_timeout_secs: 300,
            data_timeout_secs: 600,
            decide_timeout_secs: 30,
            backend_timeout_secs: 120,
            drain_timeout_secs: 30,
        }
    }
}

impl Limits {
    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// [`Self::line_timeout_secs`] as a duration.
    pub fn line_timeout(&self) -> Duration {
        Duration::from_secs(self.line_timeout_secs)
    }
    /// [`Self::data_timeout_secs`] as a duration.
    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs)
    }
    /// [`Self::decide_timeout_secs`] as a duration.
    pub fn decide_timeout(&self) -> Duration {
        Duration::from_secs(self.decide_timeout_secs)
    }
    /// [`Self::backend_timeout_secs`] as a duration.
    pub fn backend_timeout(&self) -> Duration {
        Duration::from_secs(self.backend_timeout_secs)
    }
    /// [`Self::drain_timeout_secs`] as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

/// A bound of [`Limits`] that a peer ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The message is larger than [`Limits::message_bytes`].
    #[error("message exceeds {limit} bytes")]
    MessageBytes {
        /// The configured limit.
        limit: usize,
    },
    /// A command line is longer than [`Limits::command_line_bytes`].
    #[error("command line exceeds {limit} bytes")]
    CommandLine {
        /// The configured limit.
        limit: usize,
    },
    /// More recipients than [`Limits::recipients`].
    #[error("more than {limit} recipients")]
    Recipients {
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than [`Limits::headers`].
    #[error("more than {limit} header fields")]
    Headers {
        /// The configured limit.
        limit: usize,
    },
    /// More simultaneous connections than [`Limits::connections`].
    #[error("more than {limit} connections")]
    Connections {
        /// The configured limit.
        limit: usize,
    },
    /// The peer was silent longer than [`Limits::idle_timeout_secs`] or took longer than
    /// [`Limits::line_timeout_secs`] / [`Limits::data_timeout_secs`].
    #[error("peer too slow (timeout {seconds} s)")]
    Timeout {
        /// The timeout that expired.
        seconds: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_is_the_secure_default() {
        let parsed: GateConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, GateConfig::default());
        assert_eq!(parsed.on_reject, RejectAction::Reject);
        assert_eq!(parsed.on_oversize, OversizeAction::Tempfail);
    }

    /// Refusals after the queue make bounces to a sender a forger chooses: said, not
    /// refused (a server may want them).
    #[test]
    fn lmtp_refusals_after_the_queue_are_warned_about() {
        let lmtp = |on_reject: &str, on_undecryptable: &str| -> GateConfig {
            serde_json::from_str(&format!(
                r#"{{"on_reject":"{on_reject}","on_undecryptable":"{on_undecryptable}",
                    "lmtp":{{"listen":"127.0.0.1:1","backend":"127.0.0.1:2",
                             "quarantine_address":"q@example.org"}}}}"#
            ))
            .unwrap()
        };
        let warnings = lmtp("reject", "pass").warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("on_reject") && warnings[0].contains("backscatter"),
            "{warnings:?}"
        );
        let warnings = lmtp("quarantine", "reject").warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("on_undecryptable"), "{warnings:?}");
        for quiet in ["quarantine", "defuse", "monitor"] {
            assert!(lmtp(quiet, "pass").warnings().is_empty(), "{quiet}");
        }
        // A message too large to inspect, refused after the queue, bounces too.
        let mut oversize = lmtp("quarantine", "pass");
        oversize.on_oversize = OversizeAction::Reject;
        let warnings = oversize.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("on_oversize")
                && warnings[0].contains("message_size_limit")
                && warnings[0].contains(&oversize.limits.message_bytes.to_string()),
            "{warnings:?}"
        );
        let milter: GateConfig =
            serde_json::from_str(r#"{"on_reject":"reject","milter":{"listen":"127.0.0.1:1"}}"#)
                .unwrap();
        assert!(milter.warnings().is_empty());
    }

    /// Attack: a quarantine address with a line break adds its own RCPT to the backend
    /// transaction of a quarantined (rejected) message, which can then reach that
    /// recipient too; one with a `>` ends the address early. Refused at load, with the
    /// reason.
    #[test]
    fn a_quarantine_address_or_hostname_that_could_inject_lmtp_commands_is_refused() {
        let lmtp = |address: &str, hostname: &str| -> GateConfig {
            let mut config: GateConfig = serde_json::from_str(
                r#"{"authserv_id":"mx.example.org","on_reject":"quarantine",
                    "lmtp":{"listen":"127.0.0.1:1","backend":"127.0.0.1:2"}}"#,
            )
            .unwrap();
            if let Some(lmtp) = config.lmtp.as_mut() {
                lmtp.quarantine_address = Some(address.to_owned());
                lmtp.hostname = hostname.to_owned();
            }
            config
        };
        assert_eq!(lmtp("q@example.org", "gate.example.org").validate(), Ok(()));
        for bad in [
            "q@example.org>\r\nRCPT TO:<bob@example.org",
            "q@example.org\nRCPT TO:<bob@example.org>",
            "q@example.org> NOTIFY=NEVER",
            "<q@example.org>",
            "q example@example.org",
            "quarantine",
            "",
        ] {
            let error = lmtp(bad, "gate.example.org").validate().unwrap_err();
            assert!(
                matches!(&error, ConfigError::BadQuarantineAddress { address, .. } if address == bad),
                "{bad:?}: {error:?}"
            );
            assert!(
                error.to_string().contains("lmtp.quarantine_address"),
                "{error}"
            );
        }
        for bad in [
            "gate.example.org\r\n250 ok",
            "gate example",
            "",
            "gäte.example",
        ] {
            assert_eq!(
                lmtp("q@example.org", bad).validate(),
                Err(ConfigError::BadHostname(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<GateConfig>(r#"{"on_rejct":"reject"}"#).is_err());
    }

    #[test]
    fn kebab_case_actions() {
        let parsed: GateConfig = serde_json::from_str(
            r#"{"on_reject":"defuse","lmtp":{"listen":"127.0.0.1:1","backend":"127.0.0.1:2"}}"#,
        )
        .unwrap();
        assert_eq!(parsed.on_reject, RejectAction::Defuse);
        assert_eq!(parsed.lmtp.unwrap().hostname, "localhost");
    }
}
