//! Compares our RFC 5546 restriction tables (generated from the RFC text) with libical's
//! `design-data/ical-restrictions.csv`, read at test time from IMIPSEC_CORPORA. Every
//! difference must be listed with its reason in `tests/libical/exceptions.json`; an
//! unlisted difference fails, and so does a listed one that no longer differs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use imipsec_itip::restrictions::{Presence, TableScope, tables};
use imipsec_itip::{ComponentKind, Method};

fn corpora() -> std::path::PathBuf {
    let dir = std::env::var_os("IMIPSEC_CORPORA")
        .expect("IMIPSEC_CORPORA must point at the shared corpora (e.g. ../shared/corpora) for this ignored test");
    let dir = std::path::PathBuf::from(dir);
    // cargo runs tests in the crate directory; a relative path is meant from the workspace root.
    if dir.is_relative() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir)
    } else {
        dir
    }
}

fn squash(name: &str) -> String {
    name.replace('-', "")
}

/// (method, component, name) -> presence in RFC notation, with "0 or 1 (excl)" for rows
/// whose comment forbids a partner property.
fn ours() -> BTreeMap<(String, String, String), String> {
    let mut map = BTreeMap::new();
    for t in tables() {
        match t.scope {
            TableScope::Method(method, kind) => {
                for row in t.rows {
                    if matches!(
                        row.name,
                        "IANA-PROPERTY"
                            | "X-PROPERTY"
                            | "IANA-COMPONENT"
                            | "X-COMPONENT"
                            | "METHOD"
                    ) {
                        continue;
                    }
                    let mut presence = row.presence.as_str().to_owned();
                    if row.presence == Presence::ZeroOrOne
                        && row.comment.starts_with("If present,")
                        && row.comment.contains("MUST NOT be present")
                    {
                        presence.push_str(" (excl)");
                    }
                    map.insert(
                        (
                            method.as_str().to_owned(),
                            kind.as_str().to_owned(),
                            squash(row.name),
                        ),
                        presence,
                    );
                }
            }
            TableScope::Calendar => {
                for row in t
                    .rows
                    .iter()
                    .filter(|r| matches!(r.name, "PRODID" | "VERSION" | "CALSCALE"))
                {
                    map.insert(
                        ("NONE".into(), "VCALENDAR".into(), row.name.to_owned()),
                        row.presence.as_str().to_owned(),
                    );
                }
            }
            _ => {}
        }
    }
    map
}

fn libical(csv: &str) -> BTreeMap<(String, String, String), String> {
    let methods: BTreeSet<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
    let kinds: BTreeSet<&str> = [
        ComponentKind::Event,
        ComponentKind::Todo,
        ComponentKind::Journal,
        ComponentKind::FreeBusy,
    ]
    .iter()
    .map(|k| k.as_str())
    .collect();
    let mut map = BTreeMap::new();
    for line in csv.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [method, component, property, sub, restriction, ..] = fields.as_slice() else {
            continue;
        };
        let restriction = restriction.split_whitespace().next().unwrap_or_default();
        let presence = match restriction {
            "ONE" => "1",
            "ONEPLUS" => "1+",
            "ZERO" => "0",
            "ZEROPLUS" => "0+",
            "ZEROORONE" => "0 or 1",
            "ONEEXCLUSIVE" => "1 (excl)",
            "ONEMUTUAL" => "1 (mutual)",
            other => panic!("unknown libical restriction {other}"),
        };
        let calendar_row = *method == "NONE"
            && *component == "VCALENDAR"
            && matches!(*property, "PRODID" | "VERSION" | "CALSCALE");
        let scheduling_row = methods.contains(method) && kinds.contains(component);
        if !calendar_row && !scheduling_row {
            continue;
        }
        let name = match (*property, *sub) {
            ("NONE", "NONE") => component.to_string(),
            ("NONE", "X") | ("X", "NONE") => continue,
            ("NONE", sub) => sub.to_string(),
            (property, _) => property.to_string(),
        };
        map.insert(
            (method.to_string(), component.to_string(), name),
            presence.to_owned(),
        );
    }
    map
}

#[derive(serde::Deserialize)]
struct Exception {
    method: String,
    component: String,
    name: String,
    ours: String,
    libical: String,
    reason: String,
}

#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn our_restriction_table_agrees_with_libical_except_where_listed() {
    let csv =
        std::fs::read_to_string(corpora().join("itip/libical/ical-restrictions.csv")).unwrap();
    let exceptions: Vec<Exception> = serde_json::from_str(include_str!("libical/exceptions.json"))
        .expect("exceptions.json parses");
    let listed: BTreeMap<(String, String, String), &Exception> = exceptions
        .iter()
        .map(|e| ((e.method.clone(), e.component.clone(), e.name.clone()), e))
        .collect();
    let ours = ours();
    let theirs = libical(&csv);

    let (mut agree, mut known, mut only_libical) = (0, 0, 0);
    let mut failures = Vec::new();
    let keys: BTreeSet<_> = ours.keys().chain(theirs.keys()).cloned().collect();
    for key in keys {
        let (a, b) = (ours.get(&key), theirs.get(&key));
        let Some(a) = a else {
            // Not in RFC 5546's table (RFC 7986, 9073, 9253 additions, EXRULE): RFC 5546
            // lets it appear as IANA-PROPERTY / IANA-COMPONENT, we do not constrain it.
            only_libical += 1;
            continue;
        };
        let b = b.map(String::as_str).unwrap_or("absent");
        match listed.get(&key) {
            Some(e) if a == b => failures.push(format!(
                "listed but no longer differs: {key:?} ({})",
                e.reason
            )),
            Some(e) if e.ours != *a || e.libical != b => failures.push(format!(
                "{key:?}: ours {a}, libical {b}, but exceptions.json says {} / {}",
                e.ours, e.libical
            )),
            Some(e) => {
                known += 1;
                println!(
                    "known divergence {key:?}: ours {a}, libical {b}: {}",
                    e.reason
                );
            }
            None if a == b => agree += 1,
            None => failures.push(format!(
                "UNEXPECTED difference {key:?}: ours {a}, libical {b}"
            )),
        }
    }
    for key in listed.keys() {
        if !ours.contains_key(key) {
            failures.push(format!("listed row not in our table: {key:?}"));
        }
    }
    println!(
        "libical: {agree} rows agree, {known} known divergences, {only_libical} libical-only rows (extensions) not compared"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(agree > 500, "the comparison compared too little: {agree}");
}

/// One tolerated row of the interoperability profile, as listed in
/// `tests/libical/tolerances.json`.
#[derive(serde::Deserialize)]
struct Tolerance {
    method: String,
    component: String,
    name: String,
    ours: String,
    libical: String,
    deviation: String,
    reason: String,
}

/// Every restriction-table row whose violation the profile tolerates
/// (`restrictions::tolerated`), found by asking it about every row of every table.
fn tolerated_rows() -> BTreeMap<(String, String, String), (String, String)> {
    use imipsec_itip::restrictions::tolerated;
    use imipsec_itip::{Rule, Violation};
    let mut rows = BTreeMap::new();
    for t in tables() {
        let TableScope::Method(method, kind) = t.scope else {
            continue;
        };
        for row in t.rows.iter().filter(|r| r.depth == 1) {
            // The count that breaks the row: one where none may be, none where one must.
            let found = match row.presence {
                Presence::Zero => 1,
                Presence::One | Presence::OneOrMore => 0,
                _ => continue,
            };
            let violation = Violation {
                section: t.section,
                method: Some(method),
                component: kind.as_str().to_owned(),
                property: row.name,
                rule: Rule::Presence(row.presence),
                found,
                offset: 0,
            };
            if let Some(deviation) = tolerated(method, &violation) {
                rows.insert(
                    (
                        method.as_str().to_owned(),
                        kind.as_str().to_owned(),
                        squash(row.name),
                    ),
                    (row.presence.as_str().to_owned(), format!("{deviation:?}")),
                );
            }
        }
    }
    rows
}

/// Each tolerance of the interoperability profile (crates/itip/README.md) is a reasoned
/// exception to both RFC 5546 and libical's table: listed with libical's value and why no
/// decision reads it; an unlisted tolerance fails, and so does a listed row no longer
/// tolerated.
#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn every_tolerated_row_is_a_listed_exception_with_libicals_value() {
    let csv =
        std::fs::read_to_string(corpora().join("itip/libical/ical-restrictions.csv")).unwrap();
    let theirs = libical(&csv);
    let listed: Vec<Tolerance> =
        serde_json::from_str(include_str!("libical/tolerances.json")).expect("parses");
    let rows = tolerated_rows();
    let mut failures = Vec::new();
    for t in &listed {
        let key = (t.method.clone(), t.component.clone(), t.name.clone());
        match rows.get(&key) {
            None => failures.push(format!("listed but not tolerated: {key:?}")),
            Some((ours, deviation)) => {
                let libical = theirs.get(&key).map(String::as_str).unwrap_or("absent");
                if *ours != t.ours || libical != t.libical || *deviation != t.deviation {
                    failures.push(format!(
                        "{key:?}: ours {ours}, libical {libical}, {deviation}; listed {} / {} / {}",
                        t.ours, t.libical, t.deviation
                    ));
                }
                assert!(t.reason.len() > 40, "{key:?}: give a reason");
                println!(
                    "tolerated {key:?}: ours {ours}, libical {libical}: {}",
                    t.reason
                );
            }
        }
    }
    for (key, (ours, deviation)) in &rows {
        if !listed
            .iter()
            .any(|t| (&t.method, &t.component, &t.name) == (&key.0, &key.1, &key.2))
        {
            failures.push(format!(
                "UNLISTED tolerance {key:?}: ours {ours}, libical {}, {deviation}",
                theirs.get(key).map(String::as_str).unwrap_or("absent")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!rows.is_empty());
}
