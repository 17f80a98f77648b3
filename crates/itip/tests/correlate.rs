//! Table-driven authorization tests: every method against every role, SENT-BY with and
//! without a grant, delegation, overrides, address case variants, several components.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::cell::RefCell;

use imipsec_itip::{
    Authorization, CorrelateOptions, Correlation, DelegationPolicy, DelegationQuery,
    DenyAllDelegations, ItipMessage, Method, MimeParams, NotCorrelated, ParseOptions,
    PolicyUnavailable, Role, Side, correlate, parse_itip,
};

const ORG: &str = "organizer@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const SECRETARY: &str = "secretary@example.com";
const MALLORY: &str = "mallory@example.org";

/// One VEVENT with the properties RFC 5546 section 3.2 requires for `method`, plus
/// `extra` lines (ORGANIZER, ATTENDEEs, RECURRENCE-ID...).
fn vevent(method: Method, uid: &str, extra: &[&str]) -> String {
    let mut lines = vec![
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{uid}"),
        "DTSTAMP:20260101T120000Z".to_owned(),
    ];
    if matches!(
        method,
        Method::Publish | Method::Request | Method::Add | Method::Counter
    ) {
        lines.push("DTSTART:20260201T100000Z".into());
        lines.push("SUMMARY:Planning".into());
    }
    if matches!(
        method,
        Method::Add | Method::Cancel | Method::Counter | Method::DeclineCounter
    ) {
        lines.push("SEQUENCE:1".into());
    }
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines.push("END:VEVENT".into());
    lines.join("\r\n")
}

fn calendar(method: Method, components: &[String]) -> Vec<u8> {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//imipsec//test//EN\r\nMETHOD:{}\r\n{}\r\nEND:VCALENDAR\r\n",
        method.as_str(),
        components.join("\r\n")
    )
    .into_bytes()
}

fn parse(method: Method, components: &[String]) -> ItipMessage {
    let ics = calendar(method, components);
    let mime = MimeParams {
        method: Some(method.as_str()),
        charset: Some("UTF-8"),
        component: None,
    };
    parse_itip(&ics, &mime, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("{method}: {e}\n{}", String::from_utf8_lossy(&ics)))
}

fn run(msg: &ItipMessage, signers: &[&str], policy: &dyn DelegationPolicy) -> Correlation {
    correlate(msg, signers, policy, &CorrelateOptions::default())
}

/// `Ok(role)` or `Err(code)`.
fn verdict(c: &Correlation) -> Result<Role, &'static str> {
    match c.failure() {
        None => Ok(c.authorization().unwrap().role),
        Some(f) => Err(f.code()),
    }
}

fn organizer_line() -> String {
    format!("ORGANIZER;CN=Org:mailto:{ORG}")
}

/// Lines naming ALICE as the only attendee (where the method allows attendees).
fn party_lines(method: Method) -> Vec<String> {
    let mut lines = vec![organizer_line()];
    if method != Method::Publish {
        lines.push(format!("ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}"));
    }
    lines
}

#[test]
fn every_method_against_every_role() {
    struct Case {
        method: Method,
        signer: &'static str,
        expected: Result<Role, &'static str>,
    }
    let mut cases = Vec::new();
    for method in Method::ALL {
        let (organizer, attendee) = match method.side() {
            Side::Organizer => (Ok(Role::Organizer), Err("role-not-authorized")),
            Side::Attendee => (Err("role-not-authorized"), Ok(Role::Attendee)),
        };
        // PUBLISH carries no ATTENDEE (section 3.2.1), so Alice is a stranger there.
        let attendee = if method == Method::Publish {
            Err("signer-not-correlated")
        } else {
            attendee
        };
        cases.push(Case {
            method,
            signer: ORG,
            expected: organizer,
        });
        cases.push(Case {
            method,
            signer: ALICE,
            expected: attendee,
        });
        cases.push(Case {
            method,
            signer: MALLORY,
            expected: Err("signer-not-correlated"),
        });
    }
    assert_eq!(cases.len(), 24);
    for case in cases {
        let lines = party_lines(case.method);
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let msg = parse(case.method, &[vevent(case.method, "uid-1", &refs)]);
        let c = run(&msg, &[case.signer], &DenyAllDelegations);
        assert_eq!(
            verdict(&c),
            case.expected,
            "{} signed by {}",
            case.method,
            case.signer
        );
        assert_eq!(c.components.len(), 1);
        if let Ok(a) = &c.components[0].result {
            assert_eq!(a.via, None);
            assert!(a.actor.matches(case.signer, true));
        }
    }
}

#[test]
fn attendee_reply_for_another_attendee_fails() {
    let msg = parse(
        Method::Reply,
        &[vevent(
            Method::Reply,
            "u",
            &[
                &organizer_line(),
                &format!("ATTENDEE;PARTSTAT=DECLINED:mailto:{BOB}"),
            ],
        )],
    );
    let c = run(&msg, &[ALICE], &DenyAllDelegations);
    assert_eq!(verdict(&c), Err("signer-not-correlated"));
    let f = c.failure().unwrap();
    assert!(
        matches!(f, imipsec_itip::Failure::SignerNotCorrelated { reason: NotCorrelated::NoMatch, actor: Some(a), .. } if a.matches(BOB, false))
    );
}

/// A policy that records its queries and answers with a fixed result.
struct Recorder {
    answer: Result<bool, PolicyUnavailable>,
    queries: RefCell<Vec<(String, String, Method, Side)>>,
}

impl Recorder {
    fn new(answer: Result<bool, PolicyUnavailable>) -> Self {
        Recorder {
            answer,
            queries: RefCell::new(Vec::new()),
        }
    }
}

impl DelegationPolicy for Recorder {
    fn sent_by_allowed(&self, q: &DelegationQuery<'_>) -> Result<bool, PolicyUnavailable> {
        self.queries.borrow_mut().push((
            q.principal.text.clone(),
            q.delegate.text.clone(),
            q.method,
            q.side,
        ));
        self.answer.clone()
    }
}

#[test]
fn organizer_sent_by_needs_a_grant() {
    let organizer = format!("ORGANIZER;SENT-BY=\"mailto:{SECRETARY}\":mailto:{ORG}");
    let attendee = format!("ATTENDEE:mailto:{ALICE}");
    let msg = parse(
        Method::Request,
        &[vevent(Method::Request, "u", &[&organizer, &attendee])],
    );

    let denied = run(&msg, &[SECRETARY], &DenyAllDelegations);
    assert_eq!(verdict(&denied), Err("sent-by-unauthorized"));

    let grant = Recorder::new(Ok(true));
    let granted = run(&msg, &[SECRETARY], &grant);
    assert_eq!(verdict(&granted), Ok(Role::Organizer));
    let a: &Authorization = granted.authorization().unwrap();
    assert!(a.actor.matches(ORG, true));
    assert!(a.via.as_ref().unwrap().matches(SECRETARY, true));
    assert_eq!(
        grant.queries.borrow().as_slice(),
        [(
            format!("mailto:{ORG}"),
            format!("mailto:{SECRETARY}"),
            Method::Request,
            Side::Organizer
        )]
    );

    let down = Recorder::new(Err(PolicyUnavailable {
        detail: "store locked".into(),
    }));
    let unavailable = run(&msg, &[SECRETARY], &down);
    assert_eq!(verdict(&unavailable), Err("policy-unavailable"));
    assert!(unavailable.policy_unavailable());

    // The organizer itself needs no grant, and a stranger is not the SENT-BY.
    assert_eq!(
        verdict(&run(&msg, &[ORG], &DenyAllDelegations)),
        Ok(Role::Organizer)
    );
    assert_eq!(
        verdict(&run(&msg, &[MALLORY], &grant)),
        Err("signer-not-correlated")
    );
}

#[test]
fn policy_unavailable_outranks_other_signers_failures() {
    let organizer = format!("ORGANIZER;SENT-BY=\"mailto:{SECRETARY}\":mailto:{ORG}");
    let msg = parse(
        Method::Request,
        &[vevent(
            Method::Request,
            "u",
            &[&organizer, &format!("ATTENDEE:mailto:{ALICE}")],
        )],
    );
    let down = Recorder::new(Err(PolicyUnavailable {
        detail: "io".into(),
    }));
    let c = run(&msg, &[MALLORY, ALICE, SECRETARY], &down);
    assert_eq!(
        verdict(&c),
        Err("policy-unavailable"),
        "tempfail, not reject"
    );
}

#[test]
fn attendee_sent_by_reply_asks_the_policy_on_the_attendee_side() {
    let attendee =
        format!("ATTENDEE;PARTSTAT=ACCEPTED;SENT-BY=\"mailto:{SECRETARY}\":mailto:{ALICE}");
    let msg = parse(
        Method::Reply,
        &[vevent(Method::Reply, "u", &[&organizer_line(), &attendee])],
    );
    assert_eq!(
        verdict(&run(&msg, &[SECRETARY], &DenyAllDelegations)),
        Err("sent-by-unauthorized")
    );
    let grant = Recorder::new(Ok(true));
    let c = run(&msg, &[SECRETARY], &grant);
    assert_eq!(verdict(&c), Ok(Role::Attendee));
    assert_eq!(grant.queries.borrow()[0].3, Side::Attendee);
    assert_eq!(grant.queries.borrow()[0].2, Method::Reply);
}

fn delegation_lines(delegator_partstat: &str, back_reference: bool) -> Vec<String> {
    let delegate = if back_reference {
        format!("ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM=\"mailto:{ALICE}\":mailto:{BOB}")
    } else {
        format!("ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{BOB}")
    };
    vec![
        organizer_line(),
        format!(
            "ATTENDEE;PARTSTAT={delegator_partstat};DELEGATED-TO=\"mailto:{BOB}\":mailto:{ALICE}"
        ),
        delegate,
    ]
}

#[test]
fn delegator_may_send_the_request_to_its_delegate() {
    let lines = delegation_lines("DELEGATED", true);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let msg = parse(Method::Request, &[vevent(Method::Request, "u", &refs)]);
    let c = run(&msg, &[ALICE], &DenyAllDelegations);
    assert_eq!(verdict(&c), Ok(Role::Delegator));
    let a = c.authorization().unwrap();
    assert!(a.actor.matches(ALICE, true));
    assert_eq!(a.delegates.len(), 1);
    assert!(a.delegates[0].matches(BOB, true));
    // Only a REQUEST: a delegator cannot CANCEL or ADD.
    for method in [Method::Cancel, Method::Add] {
        let msg = parse(method, &[vevent(method, "u", &refs)]);
        assert_eq!(
            verdict(&run(&msg, &[ALICE], &DenyAllDelegations)),
            Err("role-not-authorized"),
            "{method}"
        );
    }
}

#[test]
fn inconsistent_delegation_is_not_a_delegator() {
    for (partstat, back_reference) in [("ACCEPTED", true), ("DELEGATED", false)] {
        let lines = delegation_lines(partstat, back_reference);
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let msg = parse(Method::Request, &[vevent(Method::Request, "u", &refs)]);
        let c = run(&msg, &[ALICE], &DenyAllDelegations);
        assert_eq!(
            verdict(&c),
            Err("role-not-authorized"),
            "{partstat} {back_reference}"
        );
    }
}

#[test]
fn delegate_reply_is_its_own() {
    let attendee =
        format!("ATTENDEE;PARTSTAT=ACCEPTED;DELEGATED-FROM=\"mailto:{ALICE}\":mailto:{BOB}");
    let msg = parse(
        Method::Reply,
        &[vevent(Method::Reply, "u", &[&organizer_line(), &attendee])],
    );
    assert_eq!(
        verdict(&run(&msg, &[BOB], &DenyAllDelegations)),
        Ok(Role::Attendee)
    );
    assert_eq!(
        verdict(&run(&msg, &[ALICE], &DenyAllDelegations)),
        Err("signer-not-correlated")
    );
}

#[test]
fn overrides_are_each_authorized_and_must_share_the_organizer() {
    let attendee = format!("ATTENDEE:mailto:{ALICE}");
    let master = vevent(
        Method::Request,
        "u",
        &[&organizer_line(), &attendee, "RRULE:FREQ=WEEKLY"],
    );
    let same = vevent(
        Method::Request,
        "u",
        &[
            &organizer_line(),
            &attendee,
            "RECURRENCE-ID;RANGE=THISANDFUTURE:20260208T100000Z",
        ],
    );
    let msg = parse(Method::Request, &[master.clone(), same]);
    let c = run(&msg, &[ORG], &DenyAllDelegations);
    assert!(c.is_authorized());
    assert_eq!(c.components.len(), 2);
    let rid = c.components[1].recurrence_id.as_ref().unwrap();
    assert_eq!(rid.value, "20260208T100000Z");
    assert!(rid.this_and_future);

    let other = vevent(
        Method::Request,
        "u",
        &[
            &format!("ORGANIZER:mailto:{MALLORY}"),
            &attendee,
            "RECURRENCE-ID:20260208T100000Z",
        ],
    );
    // The parser refuses the object (one object, one organizer: organizer-mismatch)...
    let ics = calendar(Method::Request, &[master.clone(), other]);
    let mime = MimeParams {
        method: Some("REQUEST"),
        charset: Some("UTF-8"),
        component: None,
    };
    let err = parse_itip(&ics, &mime, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.code(), "organizer-mismatch", "{err}");
    // ...and correlation, given such a message anyway, refuses the override too.
    let mut msg = parse(Method::Request, &[master.clone(), master]);
    msg.components[1].organizer = Some(imipsec_itip::Organizer {
        address: imipsec_itip::CalAddress::parse(&format!("mailto:{MALLORY}")),
        common_name: None,
        sent_by: None,
    });
    for signers in [&[ORG][..], &[ORG, MALLORY][..]] {
        let c = run(&msg, signers, &DenyAllDelegations);
        assert!(!c.is_authorized(), "{signers:?}");
        assert!(c.components[0].result.is_ok());
        assert_eq!(
            c.components[1].result.as_ref().unwrap_err().code(),
            "role-not-authorized",
            "{signers:?}"
        );
    }
}

#[test]
fn a_reply_speaks_for_one_attendee_in_every_component() {
    let a = vevent(
        Method::Reply,
        "u",
        &[
            &organizer_line(),
            &format!("ATTENDEE;PARTSTAT=ACCEPTED:mailto:{ALICE}"),
        ],
    );
    let b = vevent(
        Method::Reply,
        "u",
        &[
            &organizer_line(),
            &format!("ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BOB}"),
            "RECURRENCE-ID:20260208T100000Z",
        ],
    );
    let msg = parse(Method::Reply, &[a, b]);
    let c = run(&msg, &[ALICE, BOB], &DenyAllDelegations);
    assert!(!c.is_authorized());
    assert!(matches!(
        c.failure(),
        Some(imipsec_itip::Failure::InconsistentActor { .. })
    ));
}

#[test]
fn address_case_variants() {
    let msg = parse(
        Method::Request,
        &[vevent(
            Method::Request,
            "u",
            &[
                "ORGANIZER:MAILTO:Organizer@EXAMPLE.COM",
                &format!("ATTENDEE:mailto:{ALICE}"),
            ],
        )],
    );
    assert_eq!(
        verdict(&run(&msg, &[ORG], &DenyAllDelegations)),
        Ok(Role::Organizer)
    );
    assert_eq!(
        verdict(&run(&msg, &["ORGANIZER@example.com"], &DenyAllDelegations)),
        Ok(Role::Organizer)
    );
    let strict = CorrelateOptions {
        strict_local_part: true,
    };
    assert_eq!(
        correlate(&msg, &[ORG], &DenyAllDelegations, &strict)
            .failure()
            .unwrap()
            .code(),
        "signer-not-correlated"
    );
    assert!(
        correlate(
            &msg,
            &["Organizer@example.com"],
            &DenyAllDelegations,
            &strict
        )
        .is_authorized()
    );
}

#[test]
fn display_names_and_non_mailto_addresses_never_match() {
    let msg = parse(
        Method::Request,
        &[vevent(
            Method::Request,
            "u",
            &[
                &format!("ORGANIZER;CN=\"{ORG}\":mailto:{MALLORY}"),
                &format!("ATTENDEE:mailto:{ALICE}"),
            ],
        )],
    );
    assert_eq!(
        verdict(&run(&msg, &[ORG], &DenyAllDelegations)),
        Err("signer-not-correlated")
    );

    let msg = parse(
        Method::Request,
        &[vevent(
            Method::Request,
            "u",
            &[
                "ORGANIZER:urn:uuid:organizer@example.com",
                &format!("ATTENDEE:mailto:{ALICE}"),
            ],
        )],
    );
    assert!(
        msg.warnings
            .iter()
            .any(|w| matches!(w, imipsec_itip::Warning::NonMailtoAddress { .. }))
    );
    let c = run(&msg, &[ORG], &DenyAllDelegations);
    assert!(matches!(
        c.failure(),
        Some(imipsec_itip::Failure::SignerNotCorrelated {
            reason: NotCorrelated::ActorNotMailto,
            ..
        })
    ));
}

#[test]
fn several_components_and_several_signers() {
    let one = vevent(Method::Publish, "u1", &[&organizer_line()]);
    let two = vevent(Method::Publish, "u2", &[&organizer_line()]);
    let msg = parse(Method::Publish, &[one, two]);
    assert!(msg.warnings.contains(&imipsec_itip::Warning::SeveralUids));
    let c = run(&msg, &[MALLORY, ORG], &DenyAllDelegations);
    assert!(c.is_authorized());
    assert!(
        c.components
            .iter()
            .all(|o| o.result.as_ref().unwrap().signer == ORG)
    );
    assert_eq!(
        verdict(&run(&msg, &[], &DenyAllDelegations)),
        Err("signer-not-correlated")
    );
}

#[test]
fn seed_example_4_1_organizer_and_attendee() {
    let ics = std::fs::read(format!(
        "{}/../../testdata/seed/4.1.ics",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mime = MimeParams {
        method: Some("REQUEST"),
        charset: Some("US-ASCII"),
        component: None,
    };
    let msg = parse_itip(&ics, &mime, &ParseOptions::default()).unwrap();
    assert_eq!(
        verdict(&run(&msg, &["sman@netscape.com"], &DenyAllDelegations)),
        Ok(Role::Organizer)
    );
    assert_eq!(
        verdict(&run(&msg, &["stevesil@microsoft.com"], &DenyAllDelegations)),
        Err("role-not-authorized")
    );
}

/// Regression guard: the delegation check must stay linear. Thousands of DELEGATED-TO
/// values on the signer's ATTENDEE against thousands of attendees with long DELEGATED-FROM
/// lists would cost a nested-loop check about 90 million address comparisons here.
#[test]
fn delegation_check_is_linear_in_adversarial_input() {
    let n = 1_500;
    let delegates: Vec<String> = (0..n)
        .map(|i| format!("\"mailto:d{i}@example.com\""))
        .collect();
    let mut lines = vec![
        organizer_line(),
        format!(
            "ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO={}:mailto:{ALICE}",
            delegates.join(",")
        ),
    ];
    let froms: Vec<String> = (0..40)
        .map(|i| format!("\"mailto:x{i}@example.com\""))
        .collect();
    for i in 0..n {
        // Every delegate acknowledges many others first and Alice last, except the last one.
        let from = if i + 1 == n {
            froms.join(",")
        } else {
            format!("{},\"mailto:{ALICE}\"", froms.join(","))
        };
        lines.push(format!(
            "ATTENDEE;DELEGATED-FROM={from}:mailto:d{i}@example.com"
        ));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let msg = parse(Method::Request, &[vevent(Method::Request, "u", &refs)]);
    let started = std::time::Instant::now();
    let c = run(&msg, &[ALICE], &DenyAllDelegations);
    assert_eq!(
        verdict(&c),
        Err("role-not-authorized"),
        "the last delegate does not acknowledge Alice"
    );
    println!("adversarial delegation check: {:?}", started.elapsed());
}

/// Failures go into human report text: they name the role (property), the address and the
/// rule in words, never a Debug struct.
#[test]
fn failures_display_in_plain_words() {
    let request = parse(
        Method::Request,
        &[vevent(
            Method::Request,
            "u1",
            &[
                &format!("ORGANIZER;SENT-BY=\"mailto:{SECRETARY}\":mailto:{MALLORY}"),
                &format!("ATTENDEE:mailto:{ALICE}"),
            ],
        )],
    );
    let failure = |signer: &str| {
        run(&request, &[signer], &DenyAllDelegations)
            .failure()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        failure(BOB),
        "ORGANIZER mailto:mallory@example.org is not a signer (RFC 6047 §2.2.1, §2.2.2: the \
         S/MIME signer must be the party that acts, or its SENT-BY)"
    );
    assert_eq!(
        failure(ALICE),
        "ATTENDEE mailto:alice@example.com may not send REQUEST (RFC 5546 §1.4: REQUEST is \
         sent by the Organizer)"
    );
    assert_eq!(
        failure(SECRETARY),
        "SENT-BY mailto:secretary@example.com may not send REQUEST for \
         mailto:mallory@example.org: the delegation policy denies it (RFC 6047 §2.2.1: whether \
         a calendar user authorized someone to act on their behalf is the implementation's \
         decision)"
    );
    assert_eq!(
        run(&request, &[], &DenyAllDelegations)
            .failure()
            .unwrap()
            .to_string(),
        "no verified signer identity to correlate (RFC 6047 §2.2.1, §2.2.2: the S/MIME signer \
         must be the party that acts, or its SENT-BY)"
    );
}
