//! Calendar content outside text/calendar and MIME parser differentials (issue #11 items 2, 3).
//!
//! Every attack here is a validly signed invitation plus something a calendar server (or its
//! parser, mail-parser 0.11) reads as calendar data that imipsec did not authorise. Each test
//! failed on the code before issue #11 (the message was accepted); the controls show the same
//! builders make messages the pipeline accepts.

use super::*;

/// The organizer's signed invitation as a multipart/signed entity (to place in a multipart).
fn signed_invite(uid: &str) -> Vec<u8> {
    signed("rsa2048/organizer", &entity(&request(uid, 0), "REQUEST"))
}

/// mallory's calendar: a CANCEL of the organizer's event.
fn cancel_of(uid: &str) -> String {
    calendar("CANCEL", uid, 7, ORGANIZER, "")
}

/// An entity with these header fields and `body`.
fn part(headers: &str, body: &str) -> Vec<u8> {
    format!("{headers}\r\n{body}").into_bytes()
}

#[test]
fn control_signed_invite_in_a_multipart_is_accepted() {
    let raw = message(
        ORGANIZER,
        &mixed(
            "outer",
            &[
                b"Content-Type: text/plain\r\n\r\nSee the invitation.\r\n",
                &signed_invite("control@example.com"),
            ],
        ),
    );
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert_eq!(verdict.calendar_ranges().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Item 2: calendars that are not text/calendar.

/// Stalwart and Cyrus read application/ics and the vCalendar types as calendars; before
/// issue #11 only text/calendar counted, so an unsigned CANCEL under another type rode along
/// with a signed invitation.
#[test]
fn unsigned_calendar_under_another_media_type_beside_a_signed_invite_is_unprotected() {
    for media_type in [
        "application/ics",
        "text/x-vcalendar",
        "application/x-extension-ics",
        "text/vcalendar",
        "APPLICATION/ICS",
    ] {
        let attacker = part(
            &format!("Content-Type: {media_type}\r\n"),
            &cancel_of("victim@example.com"),
        );
        let raw = message(
            ORGANIZER,
            &mixed("outer", &[&signed_invite("genuine@example.com"), &attacker]),
        );
        assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
    }
}

/// A client opens `invite.ics` whatever its type says; a server that sniffs content reads a
/// body that begins with BEGIN:VCALENDAR.
#[test]
fn unsigned_calendar_by_file_name_or_content_beside_a_signed_invite_is_unprotected() {
    let cancel = cancel_of("victim@example.com");
    for headers in [
        "Content-Type: application/octet-stream; name=invite.ics\r\n",
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"Invite.ICS\"\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "",
    ] {
        let attacker = part(headers, &cancel);
        let raw = message(
            ORGANIZER,
            &mixed("outer", &[&signed_invite("genuine@example.com"), &attacker]),
        );
        assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
    }
}

/// A calendar part under another type inside the signed region is evaluated as iTIP like a
/// text/calendar part: mallory signs her own REQUEST and, beside it, an application/ics
/// CANCEL of the organizer's event.
#[test]
fn signed_application_ics_is_evaluated_as_itip() {
    let own = entity(
        &calendar("REQUEST", "mallory@example.net", 0, MALLORY, ""),
        "REQUEST",
    );
    let cancel = part(
        "Content-Type: application/ics; name=invite.ics\r\n",
        &cancel_of("victim@example.com"),
    );
    let content = mixed("inner", &[&own, &cancel]);
    let raw = message(MALLORY, &signed("rsa2048/stranger", &content));
    let verdict = evaluate(&raw);
    assert!(!verdict.is_accept(), "accepted: {:?}", verdict.itip());
    assert!(
        verdict
            .itip()
            .iter()
            .any(|report| report.method == "CANCEL"),
        "the application/ics CANCEL was not evaluated: {:?}",
        verdict.itip()
    );
}

/// Control: Google Calendar's shape, text/calendar plus the same calendar as an
/// application/ics attachment, signed by the organizer, is accepted.
#[test]
fn control_signed_text_calendar_with_ics_attachment_is_accepted() {
    let invite = request("google-shape@example.com", 0);
    let attachment = part(
        "Content-Type: application/ics; name=invite.ics\r\n\
         Content-Disposition: attachment; filename=invite.ics\r\n",
        &invite,
    );
    let content = mixed("inner", &[&entity(&invite, "REQUEST"), &attachment]);
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &content));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert_eq!(verdict.calendar_ranges().len(), 2);
}

/// An unsigned forwarded message holding a calendar, attached beside a signed invitation:
/// Cyrus processes the first calendar it finds in the forward.
#[test]
fn attached_forward_holding_a_calendar_beside_a_signed_invite_is_unprotected() {
    let forward = message(MALLORY, &entity(&cancel_of("victim@example.com"), "CANCEL"));
    for media_type in ["message/rfc822", "message/global"] {
        let mut attachment = format!("Content-Type: {media_type}\r\n\r\n").into_bytes();
        attachment.extend_from_slice(&forward);
        let raw = message(
            ORGANIZER,
            &mixed(
                "outer",
                &[&signed_invite("genuine@example.com"), &attachment],
            ),
        );
        assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
    }
}

/// The organizer's genuine signed invitation, forwarded by mallory as the whole body of her
/// message: before issue #11 the walk unwrapped a top-level message/rfc822 and accepted it,
/// while the same forward as an attachment was rejected. Both shapes are forwards now.
#[test]
fn message_whose_body_is_a_forward_of_a_signed_invite_is_unprotected() {
    let mut body = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    body.extend_from_slice(&signed_request("forwarded@example.com", 0));
    let raw = message(MALLORY, &body);
    let verdict = evaluate(&raw);
    assert!(!verdict.is_accept(), "a forwarded invitation was accepted");
    assert!(
        verdict.has_reason(Reason::UnprotectedCalendar),
        "{:?}",
        verdict.reasons()
    );
    assert!(verdict.layers().is_empty(), "{:?}", verdict.layers());
}

/// A forward inside the organizer's own signed region is still a forward: its calendar is
/// not this message's iTIP (its own signature, date and event state were never checked).
#[test]
fn forward_inside_the_signed_region_is_unprotected() {
    let mut attachment = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
    attachment.extend_from_slice(&message(
        MALLORY,
        &entity(&cancel_of("victim@example.com"), "CANCEL"),
    ));
    let content = mixed(
        "inner",
        &[
            &entity(&request("genuine@example.com", 0), "REQUEST"),
            &attachment,
        ],
    );
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &content));
    assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
}

/// RFC 2046 §5.1.5: an untyped part of multipart/digest is message/rfc822 (and mail-parser
/// parses it as one); before issue #11 the walk read it as text/plain.
#[test]
fn untyped_part_of_a_digest_is_a_forwarded_message() {
    let forwarded = message(MALLORY, &entity(&cancel_of("victim@example.com"), "CANCEL"));
    let mut untyped = b"\r\n".to_vec();
    untyped.extend_from_slice(&forwarded);
    let mut digest = b"Content-Type: multipart/digest; boundary=\"dig\"\r\n\r\n--dig\r\n".to_vec();
    digest.extend_from_slice(&untyped);
    digest.extend_from_slice(b"\r\n--dig--\r\n");
    let raw = message(
        ORGANIZER,
        &mixed("outer", &[&signed_invite("genuine@example.com"), &digest]),
    );
    assert_rejected(&evaluate(&raw), Reason::UnprotectedCalendar);
}

// ---------------------------------------------------------------------------------------------
// Item 3: MIME differentials. Each is malformed-mime now; before, the strict walk read the
// message one way (a signed invitation alone) and mail-parser another (a second calendar).

/// mail-parser splits on `--boundary` anywhere: a preamble line `x --outer` followed by
/// calendar headers is a calendar part only mail-parser sees.
#[test]
fn boundary_mid_line_in_the_preamble_is_malformed() {
    let cancel = cancel_of("genuine@example.com");
    let signed_part = signed_invite("genuine@example.com");
    for preamble in [
        format!("x --outer\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n{cancel}"),
        format!("--outerx\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n{cancel}"),
    ] {
        let mut body = format!(
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n{preamble}\r\n--outer\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&signed_part);
        body.extend_from_slice(b"\r\n--outer--\r\n");
        assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::MalformedMime);
    }
}

/// A bare LF before `--outer` inside a text part: the strict walk saw one text line,
/// mail-parser a delimiter and a calendar part after it.
#[test]
fn bare_lf_delimiter_in_a_crlf_message_is_malformed() {
    let text = format!(
        "Content-Type: text/plain\r\n\r\nnote\n--outer\r\nContent-Type: text/calendar; \
         method=CANCEL\r\n\r\n{}",
        cancel_of("genuine@example.com")
    );
    let raw = message(
        ORGANIZER,
        &mixed(
            "outer",
            &[&signed_invite("genuine@example.com"), text.as_bytes()],
        ),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// A header section ended by CRLF then a bare LF: mail-parser's body begins there (with a
/// calendar), the strict walk's at the next CRLF CRLF.
#[test]
fn header_section_ended_by_crlf_then_bare_lf_is_malformed() {
    let text = format!(
        "Content-Type: text/plain\r\n\n{}X-After: y\r\n\r\nnote",
        cancel_of("genuine@example.com")
    );
    let raw = message(
        ORGANIZER,
        &mixed(
            "outer",
            &[&signed_invite("genuine@example.com"), text.as_bytes()],
        ),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// A white-space-only line ends a header section for mail-parser and continues it for a
/// strict reader.
#[test]
fn white_space_line_in_a_header_section_is_malformed() {
    let text = format!(
        "X-Note: a\r\n \r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n{}",
        cancel_of("genuine@example.com")
    );
    let raw = message(
        ORGANIZER,
        &mixed(
            "outer",
            &[&signed_invite("genuine@example.com"), text.as_bytes()],
        ),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// `boundary` given twice (RFC 6838 §4.3: an error): imipsec and mail-parser took the first,
/// other readers take the last, which here splits out an unsigned calendar.
#[test]
fn duplicate_boundary_parameter_is_malformed() {
    let mut body = format!(
        "Content-Type: multipart/mixed; boundary=\"first\"; boundary=\"last\"\r\n\r\n\
         --last\r\nContent-Type: text/calendar; method=CANCEL\r\n\r\n{}\r\n--last--\r\n\
         --first\r\n",
        cancel_of("genuine@example.com")
    )
    .into_bytes();
    body.extend_from_slice(&signed_invite("genuine@example.com"));
    body.extend_from_slice(b"\r\n--first--\r\n");
    assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::MalformedMime);
}

/// RFC 2231 sections: mail-parser appends `boundary*1` to a plain `boundary` (`firstX`),
/// other readers ignore a section without `*0` (`first`).
#[test]
fn rfc2231_continued_boundary_is_malformed() {
    let mut body =
        b"Content-Type: multipart/mixed; boundary=\"first\"; boundary*1=\"X\"\r\n\r\n--firstX\r\n"
            .to_vec();
    body.extend_from_slice(&signed_invite("genuine@example.com"));
    body.extend_from_slice(b"\r\n--firstX--\r\n");
    assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::MalformedMime);
}

/// A transfer encoding on a multipart: mail-parser ignores it, a reader that decodes it sees
/// other parts.
#[test]
fn transfer_encoded_multipart_is_malformed() {
    let inner = mixed("outer", &[&signed_invite("genuine@example.com")]);
    let body = replace(
        &inner,
        b"\r\n\r\n",
        b"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::MalformedMime);
}

/// A base64-encoded forward (RFC 2046 §5.2.1 forbids it): mail-parser decodes and parses it,
/// the walk kept it as an opaque leaf.
#[test]
fn base64_encoded_forward_holding_a_calendar_is_malformed() {
    let forward = message(MALLORY, &entity(&cancel_of("victim@example.com"), "CANCEL"));
    let mut attachment =
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    attachment.extend_from_slice(base64(&forward).as_bytes());
    let raw = message(
        ORGANIZER,
        &mixed(
            "outer",
            &[&signed_invite("genuine@example.com"), &attachment],
        ),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// A signed quoted-printable calendar.
fn signed_qp_calendar(signer: &str, qp_body: &str, charset: &str) -> Vec<u8> {
    let method = if qp_body.contains("METHOD:CANCEL") {
        "CANCEL"
    } else {
        "REQUEST"
    };
    let entity = format!(
        "Content-Type: text/calendar; method={method}; charset={charset}; component=VEVENT\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp_body}"
    );
    signed(signer, entity.as_bytes())
}

#[test]
fn control_signed_quoted_printable_calendar_is_accepted() {
    let qp = request("qp@example.com", 0)
        .replace('=', "=3D")
        .replace("SUMMARY:Planning", "SUMMARY:Plan=3Dning=\r\n now");
    let raw = message(
        ORGANIZER,
        &signed_qp_calendar("rsa2048/organizer", &qp, "utf-8"),
    );
    assert_accepted(&evaluate(&raw));
}

/// `=` then white space then CRLF: a soft line break to mail-parser (RFC 2045 §6.7 transport
/// padding), `=` and a folded line to the walk before issue #11.
#[test]
fn quoted_printable_soft_break_after_white_space_is_malformed() {
    let qp = request("qp@example.com", 0)
        .replace('=', "=3D")
        .replace("SUMMARY:Planning", "SUMMARY:Plan= \r\n ning");
    let raw = message(
        ORGANIZER,
        &signed_qp_calendar("rsa2048/organizer", &qp, "utf-8"),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// `==` makes mail-parser give up decoding and hand the server the undecoded body: mallory
/// signs a calendar whose decoded form names her as ORGANIZER (`=0D=0A` starts a line only
/// when decoded) and whose undecoded form names the organizer (a soft break hides that line
/// only when decoded).
#[test]
fn quoted_printable_that_mail_parser_leaves_undecoded_is_malformed() {
    let qp = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//attacks//EN\r\nMETHOD:REQUEST\r\n\
         BEGIN:VEVENT\r\nUID:qp-hijack@example.com\r\nDTSTAMP:20260601T000000Z\r\n\
         X-SHOW:a=0D=0AORGANIZER:mailto:{MALLORY}\r\n\
         X-HIDE:b=\r\nORGANIZER:mailto:{ORGANIZER}\r\n\
         DTSTART:20260615T100000Z\r\nSUMMARY:a==3D\r\nSEQUENCE:0\r\n\
         ATTENDEE:mailto:{ATTENDEE}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let raw = message(
        MALLORY,
        &signed_qp_calendar("rsa2048/stranger", &qp, "utf-8"),
    );
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// charset=UTF-7: mail-parser decodes it (`+AEA-` is `@`), a reader taking the bytes as UTF-8
/// does not, so the two see different calendars. Only UTF-8 and US-ASCII are evaluated.
#[test]
fn utf7_calendar_is_not_evaluated() {
    let body = entity(&request("utf7@example.com", 0), "REQUEST");
    let body = replace(&body, b"charset=utf-8", b"charset=UTF-7");
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &body));
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);
}

/// Parameters mail-parser decodes or splits differently from RFC 2045 readers: an encoded
/// word in `charset` (mail-parser reads `utf-7`, others the literal text), a comment or a
/// backslash outside quotes in a boundary.
#[test]
fn content_type_parameters_readers_split_differently_are_malformed() {
    let body = entity(&request("encoded@example.com", 0), "REQUEST");
    let body = replace(&body, b"charset=utf-8", b"charset=\"=?us-ascii?q?utf-7?=\"");
    let raw = message(ORGANIZER, &signed("rsa2048/organizer", &body));
    assert_rejected(&evaluate(&raw), Reason::MalformedMime);

    let signed_part = signed_invite("genuine@example.com");
    for content_type in [
        "multipart/mixed; boundary=\"outer\" (the real one is inner)",
        "multipart/mixed; boundary=out\\er",
    ] {
        let mut body = format!("Content-Type: {content_type}\r\n\r\n--outer\r\n").into_bytes();
        body.extend_from_slice(&signed_part);
        body.extend_from_slice(b"\r\n--outer--\r\n");
        assert_rejected(&evaluate(&message(ORGANIZER, &body)), Reason::MalformedMime);
    }
}
