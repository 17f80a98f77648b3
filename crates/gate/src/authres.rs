//! `Authentication-Results` (RFC 8601) with the RFC 7281 `smime` method and this gate's
//! `x-imip` method.
//!
//! RFC 8601 section 5: a border MTA must delete (or rename) `Authentication-Results`
//! fields that claim its own `authserv-id`, since anyone can write them; the gate deletes
//! them before adding its own, and keeps those of other authserv-ids.

use crate::decide::{GateVerdict, Outcome};

/// The header field name.
pub const HEADER: &str = "Authentication-Results";

/// Whether the header value `value` is an `Authentication-Results` claim by `authserv_id`,
/// so that RFC 8601 section 5 says it must go.
///
/// The authserv-id is read as RFC 8601 section 2.2 defines it: `[CFWS] authserv-id` where
/// `authserv-id = value` and `value = token / quoted-string` (RFC 2045 section 5.1), so
/// `"gate.example"`, `(comment) gate.example`, `gate.example(c);`, folded whitespace and
/// quoted-pairs all name `gate.example`. The comparison ignores ASCII case (a domain name),
/// surrounding whitespace and one trailing dot. A value whose authserv-id cannot be read
/// (an unterminated comment or quoted-string, no id at all) is also a claim: fail closed,
/// since another reader may be more lenient, and a malformed field vouches for nothing.
pub fn claims_authserv_id(value: &str, authserv_id: &str) -> bool {
    match read_authserv_id(value) {
        None => true,
        Some(id) => normalise(&id).eq_ignore_ascii_case(normalise(authserv_id)),
    }
}

fn normalise(id: &str) -> &str {
    let id = id.trim();
    id.strip_suffix('.').unwrap_or(id)
}

/// The authserv-id of an `Authentication-Results` value, `None` when it has none that parses.
fn read_authserv_id(value: &str) -> Option<String> {
    let rest = skip_cfws(value)?;
    if let Some(quoted) = rest.strip_prefix('"') {
        // quoted-string (RFC 5322 section 3.2.4): quoted-pairs unescaped, folding removed
        let mut id = String::new();
        let mut chars = quoted.chars();
        loop {
            match chars.next()? {
                '"' => return Some(id),
                '\\' => id.push(chars.next()?),
                '\r' | '\n' => {}
                c => id.push(c),
            }
        }
    }
    let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    let id = rest.get(..end)?;
    (!id.is_empty()).then(|| id.to_owned())
}

/// RFC 2045 section 5.1 `token`: US-ASCII except SPACE, CTLs and `tspecials`.
fn is_token_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !" ()<>@,;:\\\"/[]?=".contains(c)
}

/// Skip `CFWS` (RFC 5322 section 3.2.2): whitespace, folding and (nested) comments with
/// quoted-pairs. `None` for an unterminated comment.
fn skip_cfws(mut text: &str) -> Option<&str> {
    loop {
        text = text.trim_start();
        let Some(after) = text.strip_prefix('(') else {
            return Some(text);
        };
        let mut depth = 1usize;
        let mut end = None;
        let mut escaped = false;
        for (index, c) in after.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(index + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        text = after.get(end?..)?;
    }
}

/// A `pvalue` (RFC 8601 section 2.2): a token-ish value as is, anything else quoted.
fn pvalue(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_+=!#$%&'*/?^`{|}~".contains(&b));
    if plain {
        value.to_owned()
    } else {
        let escaped: String = value
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                _ => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }
}

/// The value (after `Authentication-Results: `) the gate writes for `verdict`.
///
/// - OpenPGP signature layers add `x-pgp=pass body.pgp-identifier=SIGNER` (or `x-pgp=fail`)
///   after `smime`, which then says `none` for a PGP/MIME-only message.
/// - Accepted: `ID; smime=pass body.smime-identifier=SIGNER; x-imip=pass policy.method=M
///   policy.role=R policy.delegation=D policy.event-state=S` (one `x-imip` result per
///   calendar component; `S` is `checked` or `not-checked`, see [`crate::EventState`]).
/// - Rejected (written when the message is delivered defused, quarantined, or delivered by
///   `on_reject = "monitor"`): `x-imip=fail policy.reason=CODE policy.event-state=S`.
/// - No calendar data inside S/MIME: `x-imip=none (no calendar data)`.
/// - Not decrypted: `x-imip=none (not decrypted)`: nobody looked at the content.
///
/// The comments are RFC 8601 section 2.2 `CFWS`: readers that do not want them skip them.
pub fn header_value(authserv_id: &str, verdict: &GateVerdict) -> String {
    let mut out = authserv_id.to_owned();
    out.push_str("; smime=");
    out.push_str(verdict.smime.keyword());
    if let Some(signer) = &verdict.signer {
        out.push_str(" body.smime-identifier=");
        out.push_str(&pvalue(signer));
    }
    if let Some(openpgp) = &verdict.openpgp {
        out.push_str(";\r\n\tx-pgp=");
        out.push_str(openpgp.result.keyword());
        if let Some(signer) = &openpgp.signer {
            out.push_str(" body.pgp-identifier=");
            out.push_str(&pvalue(signer));
        }
    }
    let state = verdict.event_state.keyword();
    match verdict.outcome {
        Outcome::NotCalendar => out.push_str(";\r\n\tx-imip=none (no calendar data)"),
        Outcome::NotDecrypted => out.push_str(";\r\n\tx-imip=none (not decrypted)"),
        Outcome::Reject => out.push_str(&format!(
            ";\r\n\tx-imip=fail policy.reason={} policy.event-state={state}",
            pvalue(verdict.primary_code())
        )),
        Outcome::Accept if verdict.itip.is_empty() => out.push_str(&format!(
            ";\r\n\tx-imip=pass policy.reason={} policy.event-state={state}",
            pvalue(verdict.primary_code())
        )),
        Outcome::Accept => {
            for component in &verdict.itip {
                out.push_str(&format!(
                    ";\r\n\tx-imip=pass policy.method={} policy.role={} policy.delegation={} \
                     policy.event-state={state}",
                    pvalue(&component.method),
                    pvalue(&component.role),
                    pvalue(component.delegation.as_deref().unwrap_or("none")),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{EventState, ItipSummary, OpenPgpResult, Reason, SmimeResult};

    #[test]
    fn own_id_detected_through_comments_and_case() {
        assert!(claims_authserv_id(
            " mx.gate.test; smime=pass",
            "mx.gate.test"
        ));
        assert!(claims_authserv_id(
            "(forged) MX.Gate.Test 1; none",
            "mx.gate.test"
        ));
        assert!(claims_authserv_id("mx.gate.test(c); none", "mx.gate.test"));
        assert!(!claims_authserv_id(
            "other.example; dkim=pass",
            "mx.gate.test"
        ));
        assert!(!claims_authserv_id(
            "mx.gate.test.evil; none",
            "mx.gate.test"
        ));
        // unparseable: fail closed (stripped)
        assert!(claims_authserv_id("((unterminated", "mx.gate.test"));
    }

    /// Issue #11 item 9: a forged A-R whose authserv-id is a quoted-string (RFC 8601 section
    /// 2.2 `authserv-id = value`, RFC 2045 `value = token / quoted-string`) or hides behind
    /// comments, quoted-pairs, folding or case must be recognised as ours and stripped.
    #[test]
    fn forged_authserv_id_in_every_rfc8601_shape_is_ours() {
        let ours = "gate.example";
        for forged in [
            "\"gate.example\"; smime=pass",
            " \"GATE.Example\" ; smime=pass",
            "\"gate\\.example\"; smime=pass",
            "\"gate.example\r\n \"; smime=pass",
            "(x) gate.example; smime=pass",
            "(a\\)b) gate.example; smime=pass",
            "(outer (inner)) \"gate.example\"; smime=pass",
            "\r\n\t(c)\r\n gate.example 1; smime=pass",
            "gate.example.; smime=pass",
            "Gate.Example(c); none",
            "\"gate.example", // unterminated quoted-string: unreadable, stripped
            "; smime=pass",   // no authserv-id at all
            "",
        ] {
            assert!(claims_authserv_id(forged, ours), "not stripped: {forged:?}");
        }
        for foreign in [
            "other.example; dkim=pass",
            "\"other.example\"; dkim=pass",
            "(gate.example) other.example; dkim=pass",
            "\"gate.example.evil\"; none",
        ] {
            assert!(!claims_authserv_id(foreign, ours), "stripped: {foreign:?}");
        }
    }

    #[test]
    fn accepted_header_names_signer_method_role_delegation() {
        let verdict = GateVerdict {
            outcome: Outcome::Accept,
            reasons: vec![],
            smime: SmimeResult::Pass,
            signer: Some("alice@example.net".into()),
            openpgp: None,
            itip: vec![ItipSummary {
                method: "REQUEST".into(),
                role: "organizer".into(),
                delegation: Some("boss@example.net".into()),
            }],
            event_state: EventState::Checked,
        };
        assert_eq!(
            header_value("mx.gate.test", &verdict),
            "mx.gate.test; smime=pass body.smime-identifier=alice@example.net;\r\n\tx-imip=pass policy.method=REQUEST policy.role=organizer policy.delegation=boss@example.net policy.event-state=checked"
        );
    }

    /// Issue #18: a PGP/MIME signer is reported as `x-pgp`, and `smime` stays about S/MIME.
    #[test]
    fn openpgp_signature_is_its_own_result() {
        let verdict = GateVerdict {
            outcome: Outcome::Accept,
            reasons: vec![],
            smime: SmimeResult::None,
            signer: None,
            openpgp: Some(OpenPgpResult {
                result: SmimeResult::Pass,
                signer: Some("alice@example.net".into()),
            }),
            itip: vec![ItipSummary {
                method: "REQUEST".into(),
                role: "organizer".into(),
                delegation: None,
            }],
            event_state: EventState::Checked,
        };
        assert_eq!(
            header_value("gw", &verdict),
            "gw; smime=none;\r\n\tx-pgp=pass body.pgp-identifier=alice@example.net;\r\n\tx-imip=pass policy.method=REQUEST policy.role=organizer policy.delegation=none policy.event-state=checked"
        );
    }

    #[test]
    fn rejected_header_names_reason_and_quotes_odd_values() {
        let verdict = GateVerdict {
            outcome: Outcome::Reject,
            reasons: vec![Reason {
                code: imipsec_pipeline::Reason::RoleNotAuthorized,
                detail: String::new(),
            }],
            smime: SmimeResult::None,
            signer: Some("odd signer@example.net".into()),
            openpgp: None,
            itip: vec![],
            event_state: EventState::NotChecked,
        };
        assert_eq!(
            header_value("gw", &verdict),
            "gw; smime=none body.smime-identifier=\"odd signer@example.net\";\r\n\tx-imip=fail policy.reason=role-not-authorized policy.event-state=not-checked"
        );
    }
}

/// Remove from the top-level header block of `raw` every `Authentication-Results` field
/// claiming `authserv_id` (RFC 8601 section 5), keeping all other bytes as they are.
pub fn strip_own(raw: &[u8], authserv_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut offset = 0;
    let mut field_start = None::<usize>;
    let flush = |out: &mut Vec<u8>, start: usize, end: usize| {
        let field = raw.get(start..end).unwrap_or_default();
        let forged = field
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| Some((field.get(..colon)?, field.get(colon + 1..)?)))
            .is_some_and(|(name, value)| {
                name.trim_ascii().eq_ignore_ascii_case(HEADER.as_bytes())
                    && claims_authserv_id(&String::from_utf8_lossy(value), authserv_id)
            });
        if !forged {
            out.extend_from_slice(field);
        }
    };
    while offset < raw.len() {
        let rest = raw.get(offset..).unwrap_or_default();
        let line_len = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = rest.get(..line_len).unwrap_or_default();
        let is_continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let is_blank = line == b"\r\n" || line == b"\n";
        if !is_continuation {
            if let Some(start) = field_start.take() {
                flush(&mut out, start, offset);
            }
            if is_blank {
                out.extend_from_slice(raw.get(offset..).unwrap_or_default());
                return out;
            }
            field_start = Some(offset);
        }
        offset += line_len;
    }
    if let Some(start) = field_start {
        flush(&mut out, start, raw.len());
    }
    out
}

#[cfg(test)]
mod strip_tests {
    use super::*;

    #[test]
    fn strips_only_own_folded_fields_in_the_header_block() {
        let raw = b"Authentication-Results: mx.gate.test;\r\n\tsmime=pass (FORGED)\r\nAuthentication-Results: other.example; dkim=pass\r\nSubject: s\r\n\r\nAuthentication-Results: mx.gate.test; body text\r\n";
        let out = strip_own(raw, "mx.gate.test");
        assert_eq!(
            out,
            b"Authentication-Results: other.example; dkim=pass\r\nSubject: s\r\n\r\nAuthentication-Results: mx.gate.test; body text\r\n"
        );
    }
}
