//! parse_itip and diagnose: scanning, the calcard cross-check, value checks, the
//! Content-Type checks and the restriction tables, in that order.

use crate::address::has_uri_scheme;
use crate::error::{Diagnostic, ItipError, Malformed, Warning};
use crate::model::{Component, ItipMessage, vtimezone_from_node};
use crate::scan::{Node, Property, scan};
use crate::{ComponentKind, Method, MimeParams, ParseOptions, restrictions};
use imipsec_types::{TimeZones, VTimezone};

/// Parses and validates the calendar text of one `text/calendar` part (RFC 6047 section
/// 2.4) as an iTIP message (RFC 5546): structure, values, Content-Type parameters and the
/// section 3 restriction tables. Returns the first fatal finding; [`diagnose`] lists all.
pub fn parse_itip(
    ics: &[u8],
    mime: &MimeParams<'_>,
    options: &ParseOptions,
) -> Result<ItipMessage, ItipError> {
    parse_itip_all(ics, mime, options).map_err(|mut errors| {
        if errors.is_empty() {
            ItipError::Malformed(Malformed::NoCalendar)
        } else {
            errors.swap_remove(0)
        }
    })
}

/// [`parse_itip`], but a rejected text gives every fatal finding (never an empty list),
/// in the order they were met: every restriction violation of a message, not just the
/// first, so that a report can name them all.
pub fn parse_itip_all(
    ics: &[u8],
    mime: &MimeParams<'_>,
    options: &ParseOptions,
) -> Result<ItipMessage, Vec<ItipError>> {
    let mut out = Vec::new();
    let message = analyse(ics, mime, options, &mut out);
    let errors: Vec<ItipError> = out
        .into_iter()
        .filter_map(|d| match d {
            Diagnostic::Error(e) => Some(e),
            Diagnostic::Warning(_) => None,
        })
        .collect();
    match message {
        Some(message) if errors.is_empty() => Ok(message),
        _ if errors.is_empty() => Err(vec![ItipError::Malformed(Malformed::NoCalendar)]),
        _ => Err(errors),
    }
}

/// Every finding on the calendar text, errors and warnings, in the order
/// [`parse_itip`] meets them (which stops at the first error). After a limit is
/// exceeded nothing more is examined.
pub fn diagnose(ics: &[u8], mime: &MimeParams<'_>, options: &ParseOptions) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    analyse(ics, mime, options, &mut out);
    out
}

fn analyse(
    ics: &[u8],
    mime: &MimeParams<'_>,
    options: &ParseOptions,
    out: &mut Vec<Diagnostic>,
) -> Option<ItipMessage> {
    let scanned = scan(ics, &options.limits, options.strict, out)?;
    let root = scanned.root?;
    let error = |out: &mut Vec<Diagnostic>, e: ItipError| out.push(Diagnostic::Error(e));

    let method = match root.first("METHOD") {
        None => {
            let profile = root.first("PROFILE").map(|p| p.value.to_string());
            error(out, Malformed::MissingMethod { profile }.into());
            None
        }
        Some(p) => match p.value.trim().parse::<Method>() {
            Ok(m) => Some(m),
            Err(_) => {
                error(
                    out,
                    Malformed::UnknownMethod {
                        value: p.value.to_string(),
                        offset: p.offset,
                    }
                    .into(),
                );
                None
            }
        },
    };
    let kind = root
        .children
        .iter()
        .find_map(|c| ComponentKind::from_name(&c.name));
    if kind.is_none() {
        error(out, Malformed::NoSchedulingComponent.into());
    }

    if let Some(method) = method {
        match mime.method {
            Some(m) if m.trim().eq_ignore_ascii_case(method.as_str()) => {}
            Some(m) => error(
                out,
                ItipError::MethodMismatch {
                    content_type: Some(m.to_owned()),
                    calendar: method,
                },
            ),
            None if options.strict => error(
                out,
                ItipError::MethodMismatch {
                    content_type: None,
                    calendar: method,
                },
            ),
            None => out.push(Diagnostic::Warning(Warning::MissingMethodParameter)),
        }
    }
    if let (Some(component), Some(kind)) = (mime.component, kind)
        && !component.trim().eq_ignore_ascii_case(kind.as_str())
    {
        error(
            out,
            ItipError::ComponentMismatch {
                content_type: component.to_owned(),
                calendar: kind,
            },
        );
    }
    if mime.charset.is_none() {
        if options.strict {
            error(out, ItipError::MissingCharset);
        } else {
            out.push(Diagnostic::Warning(Warning::MissingCharset));
        }
    }

    let scheduling: Vec<(ComponentKind, &Node)> = root
        .children
        .iter()
        .filter_map(|c| ComponentKind::from_name(&c.name).map(|k| (k, c)))
        .collect();
    // Value syntax before the calcard cross-check: a value that fails its type
    // (`DTSTAMP:20260601T1254140`) is reported as what it is; calcard would refuse it
    // too, and blaming a parser differential tells no one what to fix. The cross-check
    // runs on every text whose values pass (a rejected text needs no second opinion).
    let before = out.len();
    for (kind, node) in &scheduling {
        check_values(*kind, node, out);
    }
    // Any error so far (an unknown METHOD, a value of the wrong type, a Content-Type
    // mismatch) already rejects the text: the cross-check would only add a "differential"
    // that blames calcard for the same defect.
    let _ = before;
    let values_ok = !out.iter().any(|d| matches!(d, Diagnostic::Error(_)));
    if !scanned.broken
        && values_ok
        && !options.danger_skip_cross_check
        && let Some(text) = scanned.text
        && let Err(detail) = crate::cross_check::cross_check(text, &root)
    {
        out.push(Diagnostic::Error(
            Malformed::ParserDifferential { detail }.into(),
        ));
    }

    let (method, kind) = (method?, kind?);
    if restrictions::table_for(method, kind).is_none() {
        error(out, ItipError::MethodNotDefined { method, kind });
        return None;
    }
    let mut violations = Vec::new();
    restrictions::check(&root, method, kind, &mut violations);
    out.extend(
        violations
            .into_iter()
            .map(|v| match restrictions::tolerated(method, &v) {
                Some(deviation) if !options.strict => {
                    Diagnostic::Warning(Warning::IcalendarDeviation {
                        deviation,
                        property: format!("{} in {}", v.property, v.component),
                        offset: v.offset,
                    })
                }
                _ => Diagnostic::Error(v.into()),
            }),
    );

    let timezones: Vec<VTimezone> = root
        .children
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case("VTIMEZONE"))
        .map(vtimezone_from_node)
        .collect();
    // Each zone read once (bounded by its limits), then one evaluation per RECURRENCE-ID.
    let zones = TimeZones::read(&timezones);
    let components: Vec<Component> = scheduling
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(k, node)| Component::from_node(*k, node, &zones))
        .collect();
    one_organizer_and_uid(method, kind, &components, &scheduling, root.offset, out);
    let warnings: Vec<Warning> = out
        .iter()
        .filter_map(|d| match d {
            Diagnostic::Warning(w) => Some(w.clone()),
            Diagnostic::Error(_) => None,
        })
        .collect();
    Some(ItipMessage {
        method,
        kind,
        components,
        warnings,
        timezones,
    })
}

/// One object, one organizer, one event: every component names the same ORGANIZER (or
/// none does), for every method, REPLY included (RFC 5546 §3.2.3: ORGANIZER "MUST be the
/// Organizer of the original event"); and, for every method but PUBLISH, the same UID
/// (RFC 5546 §§3.2.2, 3.2.3, 3.2.5, 3.2.8, 3.4.2, 3.4.3, 3.5.3: "All components MUST have
/// the same UID"; ADD, REFRESH, COUNTER and the other DECLINECOUNTERs allow one component;
/// the VTODO CANCEL of §3.4.5 cancels one to-do). PUBLISH (§§3.2.1, 3.3.1, 3.4.1, 3.5.1:
/// "1+" without that rule) may post several events of one organizer, each authorized on
/// its own. Checked here, not against stored state, so it holds with a store and
/// without one.
fn one_organizer_and_uid(
    method: Method,
    kind: ComponentKind,
    components: &[Component],
    nodes: &[(ComponentKind, &Node)],
    calendar_offset: usize,
    out: &mut Vec<Diagnostic>,
) {
    let offsets = nodes
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, n)| n.offset);
    // The local part compared exactly (only the domain is case-insensitive): honest
    // clients write one organizer the same way in every component, and this must hold
    // for `CorrelateOptions::strict_local_part` too.
    let organizer_key = |c: &Component| {
        c.organizer.as_ref().map(|o| {
            o.address
                .comparison_key(true)
                .unwrap_or_else(|| o.address.text.clone())
        })
    };
    let first = components.first();
    let first_organizer = first.and_then(organizer_key);
    if let Some((c, offset)) = components
        .iter()
        .zip(offsets)
        .find(|(c, _)| organizer_key(c) != first_organizer)
    {
        let show = |o: Option<&crate::model::Organizer>| {
            o.map_or_else(|| "none".to_owned(), |o| o.address.text.clone())
        };
        out.push(Diagnostic::Error(ItipError::OrganizerMismatch {
            first: show(first.and_then(|f| f.organizer.as_ref())),
            other: show(c.organizer.as_ref()),
            offset,
        }));
    }
    let first_uid = first.and_then(|f| f.uid.as_deref());
    if components.iter().any(|c| c.uid.as_deref() != first_uid) {
        if method == Method::Publish {
            out.push(Diagnostic::Warning(Warning::SeveralUids));
        } else if let Some(table) = restrictions::table_for(method, kind) {
            let mut distinct: Vec<Option<&str>> = Vec::new();
            for c in components {
                if !distinct.contains(&c.uid.as_deref()) {
                    distinct.push(c.uid.as_deref());
                }
            }
            out.push(Diagnostic::Error(
                crate::error::Violation {
                    section: table.section,
                    method: Some(method),
                    component: "VCALENDAR".to_owned(),
                    property: kind.as_str(),
                    rule: crate::error::Rule::SameUid,
                    found: distinct.len(),
                    offset: calendar_offset,
                }
                .into(),
            ));
        }
    }
}

/// Value syntax of the properties scheduling depends on (RFC 5545 section 3.3).
fn check_values(kind: ComponentKind, node: &Node, out: &mut Vec<Diagnostic>) {
    for p in &node.properties {
        let bad = |out: &mut Vec<Diagnostic>, m: Malformed| out.push(Diagnostic::Error(m.into()));
        match p.name.as_ref() {
            "DTSTAMP" | "CREATED" | "LAST-MODIFIED" | "COMPLETED"
                // RFC 5545 3.8.7.2 and siblings: "MUST be specified in the UTC time format".
                if !is_date_time(&p.value, true) => {
                    bad(out, invalid_date_time(p));
                }
            "DTSTART" | "DTEND" | "DUE" | "RECURRENCE-ID" => {
                let ok = match p.param("VALUE").map(str::to_ascii_uppercase).as_deref() {
                    Some("DATE") => is_date(&p.value),
                    Some("DATE-TIME") => is_date_time(&p.value, false),
                    _ => is_date_time(&p.value, false) || is_date(&p.value),
                };
                if !ok {
                    bad(out, invalid_date_time(p));
                }
            }
            "SEQUENCE"
                if p.value.trim().parse::<u32>().is_err() => {
                    bad(
                        out,
                        Malformed::InvalidSequence {
                            value: p.value.to_string(),
                            offset: p.offset,
                        },
                    );
                }
            "STATUS" => {
                let allowed: &[&str] = match kind {
                    ComponentKind::Event => &["TENTATIVE", "CONFIRMED", "CANCELLED"],
                    ComponentKind::Todo => {
                        &["NEEDS-ACTION", "COMPLETED", "IN-PROCESS", "CANCELLED"]
                    }
                    ComponentKind::Journal => &["DRAFT", "FINAL", "CANCELLED"],
                    ComponentKind::FreeBusy => &[],
                };
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&p.value)) {
                    bad(
                        out,
                        Malformed::InvalidStatus {
                            value: p.value.to_string(),
                            kind,
                            offset: p.offset,
                        },
                    );
                }
            }
            "ORGANIZER" | "ATTENDEE" => {
                check_address(&p.name, &p.value, p, out);
                for param in ["SENT-BY", "DELEGATED-TO", "DELEGATED-FROM"] {
                    for value in p.param_values(param) {
                        check_address(&format!("{};{}", p.name, param), value, p, out);
                    }
                }
            }
            _ => {}
        }
    }
}

fn check_address(property: &str, value: &str, p: &Property, out: &mut Vec<Diagnostic>) {
    if !has_uri_scheme(value) {
        out.push(Diagnostic::Error(
            Malformed::CalAddressWithoutScheme {
                property: property.to_owned(),
                value: value.to_owned(),
                offset: p.offset,
            }
            .into(),
        ));
    } else if !crate::address::is_plain_mailto(value) {
        out.push(Diagnostic::Warning(Warning::NonMailtoAddress {
            property: property.to_owned(),
            value: value.to_owned(),
            offset: p.offset,
        }));
    }
}

fn invalid_date_time(p: &Property) -> Malformed {
    Malformed::InvalidDateTime {
        property: p.name.to_string(),
        value: p.value.to_string(),
        offset: p.offset,
    }
}

/// DATE (RFC 5545 3.3.4): YYYYMMDD naming a real calendar day.
fn is_date(s: &str) -> bool {
    imipsec_types::DateTime::parse_date(s).is_ok()
}

/// DATE-TIME (RFC 5545 3.3.5): DATE "T" HHMMSS with an optional "Z" (required if `utc`).
fn is_date_time(s: &str, utc: bool) -> bool {
    imipsec_types::DateTime::parse_date_time(s).is_ok_and(|dt| dt.is_utc() || !utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_syntax() {
        assert!(is_date_time("19970701T210000Z", true));
        assert!(is_date_time("19970701T210000", false));
        assert!(!is_date_time("19970701T210000", true));
        assert!(!is_date_time("199706211T210000Z", false));
        assert!(!is_date_time("19970701T090000-0700", false));
        assert!(!is_date_time("19970231T090000", false));
        assert!(is_date("20240229"));
        assert!(!is_date("20230229"));
        assert!(!is_date("2023+229"));
    }
}
