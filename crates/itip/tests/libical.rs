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
