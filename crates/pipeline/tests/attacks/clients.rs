//! Real client invitations (issue #12): calendars written by real clients, kept under
//! `testdata/clients/` with their source and licence (its README), re-signed here with the
//! `openssl cms` CLI by the test PKI identity that stands for the client's sender, and run
//! through the pipeline. Every verdict, and every deviation warning, is asserted.
//!
//! Re-signing needs the sender to be a test identity: the client's ORGANIZER and replying
//! ATTENDEE addresses are mapped onto organizer@example.com and attendee@example.com (the
//! only rewrite); the text is put in canonical form (CRLF) as S/MIME requires of text
//! (RFC 8551 §3.1.1) and as the mail transport delivers it.

use super::*;

fn client(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/clients")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The calendar with the client's parties mapped onto the test identities, in CRLF.
fn mapped(ics: &str, organizer: &str, attendee: Option<&str>) -> String {
    let mut text = ics.replace(
        &format!("mailto:{organizer}"),
        &format!("mailto:{ORGANIZER}"),
    );
    if let Some(attendee) = attendee {
        text = text.replace(&format!("mailto:{attendee}"), &format!("mailto:{ATTENDEE}"));
    }
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// `entity` signed by the test identity `signer` with `openssl cms -sign` (detached,
/// SHA-256, the chain included), as a whole message from `from`.
fn openssl_signed(signer: &str, from: &str, entity: &[u8]) -> Vec<u8> {
    let chain = certs()
        .join("intermediate.cert.pem")
        .to_string_lossy()
        .into_owned();
    let cms = openssl(
        &[
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            &cert_path(signer),
            "-inkey",
            &key_path(signer),
            "-certfile",
            &chain,
            "-outform",
            "DER",
        ],
        entity,
    );
    message(from, &multipart_signed(entity, &cms))
}

fn base64_entity(calendar: &str, method: &str) -> Vec<u8> {
    let mut out = format!(
        "Content-Type: text/calendar; method={method}; charset=UTF-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(base64(calendar.as_bytes()).as_bytes());
    out
}

fn deviations(verdict: &Verdict) -> Vec<String> {
    verdict
        .warnings()
        .iter()
        .filter(|w| w.code.to_string() == "icalendar-deviation")
        .map(|w| w.detail.clone())
        .collect()
}

/// Lotus Notes 6 REQUEST (vpim examples/ics/method-request/gpope2.ics): X-LOTUS-CHILD_UID,
/// quoted TZID, five attendees, folded parameters. Accepted with one deviation; strict
/// rejects it.
#[test]
fn lotus_notes_6_request_is_accepted_with_the_underscore_deviation() {
    let ics = mapped(
        &client("lotus-notes-6-request.ics"),
        "gpope@certicom.com",
        None,
    );
    let raw = openssl_signed("rsa2048/organizer", ORGANIZER, &entity(&ics, "REQUEST"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    let details = deviations(&verdict);
    assert_eq!(details.len(), 1, "{details:?}");
    assert!(details[0].contains("X-LOTUS-CHILD_UID"), "{details:?}");
    assert_rejected(
        &super::profile::evaluate_strict(&raw),
        Reason::MalformedIcalendar,
    );
}

/// Apple iCal 1.5 REQUEST (vpim examples/ics/method-request/efung.ics): RFC conforming
/// apart from nothing the profile covers; accepted without a deviation, strict too.
#[test]
fn apple_ical_request_is_accepted_without_deviation() {
    let ics = mapped(
        &client("apple-ical-1.5-request.ics"),
        "aa152@hwcn.org",
        None,
    );
    let raw = openssl_signed("rsa2048/organizer", ORGANIZER, &entity(&ics, "REQUEST"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert!(deviations(&verdict).is_empty(), "{:?}", verdict.warnings());
    assert_accepted(&super::profile::evaluate_strict(&raw));
}

/// Apple iCal 1.5 REPLY to the Lotus Notes invitation (vpim test/test_ical.rb, Rep_1),
/// sent base64-encoded and re-signed by the attendee: accepted without a deviation.
#[test]
fn apple_ical_reply_in_base64_is_accepted() {
    let ics = mapped(
        &client("apple-ical-1.5-reply.ics"),
        "gpope@certicom.com",
        Some("SRoberts@certicom.com"),
    );
    let raw = openssl_signed("rsa2048/attendee", ATTENDEE, &base64_entity(&ics, "REPLY"));
    let verdict = evaluate(&raw);
    assert_accepted(&verdict);
    assert!(deviations(&verdict).is_empty(), "{:?}", verdict.warnings());
    // The same reply signed by a stranger is not the attendee's.
    let forged = openssl_signed("rsa2048/stranger", ATTENDEE, &base64_entity(&ics, "REPLY"));
    assert_rejected(&evaluate(&forged), Reason::SignerNotCorrelated);
}

// ---------------------------------------------------------------------------------------------
// The whole corpus, as received (issue #12): every file under testdata/clients/ has one row
// below; every row's verdict is asserted unsigned-allowed, and each row with a sender is also
// re-signed, byte for byte unchanged, by a certificate the test issues for that sender.

/// What the pipeline must say about a corpus file.
enum Expect {
    /// Accepted; each string names the property of one `icalendar-deviation` warning (as many
    /// warnings as strings).
    Accept(&'static [&'static str]),
    /// Rejected with this most specific reason, the detail containing the text.
    Reject(Reason, &'static str),
}

struct Case {
    file: &'static str,
    expect: Expect,
    /// The address whose certificate re-signs the message (the organizer for REQUEST and
    /// CANCEL, the replying attendee for REPLY), when the row is in the signed subset.
    sender: Option<&'static str>,
}

const CORPUS: &[Case] = &[
    Case {
        file: "outlook-365-request-base64-html.eml",
        // The base64 calendar's lines end in a bare LF.
        expect: Expect::Accept(&["BEGIN: lines end in a bare LF"]),
        sender: Some("marge@example.org"),
    },
    Case {
        file: "outlook-365-teams-request.eml",
        expect: Expect::Accept(&["BEGIN: lines end in a bare LF", "blank line"]),
        sender: Some("marge@example.com"),
    },
    Case {
        file: "outlook-com-request.eml",
        expect: Expect::Accept(&["BEGIN: lines end in a bare LF"]),
        sender: Some("alice@example.org"),
    },
    Case {
        file: "google-meet-request-qp-ics-copy.eml",
        // The attached `invite.ics` (application/ics) is evaluated too: bare LF, and no
        // method or charset parameter. The text/calendar part has none of these.
        expect: Expect::Accept(&[
            "BEGIN: lines end in a bare LF",
            "no method parameter",
            "no charset parameter",
        ]),
        sender: Some("example@gmail.com"),
    },
    Case {
        file: "google-request-7bit.eml",
        expect: Expect::Accept(&[]),
        sender: Some("alice@example.org"),
    },
    // The fixture starts with a line of 255 spaces (a capture artefact): a header section
    // that starts with white space is not RFC 5322 (§2.2, §3.5), so it is refused at byte 0.
    // The same message without that line is accepted (test below).
    Case {
        file: "icloud-request-qp-html-attachment.eml",
        expect: Expect::Reject(Reason::MalformedMime, "byte 0"),
        sender: None,
    },
    Case {
        file: "google-reply.ics",
        expect: Expect::Accept(&[]),
        sender: Some("test1@example.com"),
    },
    Case {
        file: "google-cancel.ics",
        expect: Expect::Accept(&[]),
        sender: Some("inboxapptest.french@gmail.com"),
    },
    Case {
        file: "exchange-2010-request.ics",
        expect: Expect::Accept(&[]),
        sender: Some("inbox.apptest2@inboxapp.onmicrosoft.com"),
    },
    Case {
        file: "iphone-3-request.ics",
        expect: Expect::Accept(&[]),
        sender: Some("inbox.apptest2@inboxapp.onmicrosoft.com"),
    },
    Case {
        file: "icloud-cancel.ics",
        expect: Expect::Accept(&[]),
        sender: None,
    },
    Case {
        file: "lotus-notes-6-request.ics",
        expect: Expect::Accept(&["X-LOTUS-CHILD_UID"]),
        sender: Some("gpope@certicom.com"),
    },
    Case {
        file: "apple-ical-1.5-request.ics",
        expect: Expect::Accept(&[]),
        sender: None,
    },
    Case {
        file: "apple-ical-1.5-reply.ics",
        expect: Expect::Accept(&[]),
        sender: None,
    },
    // KMail 4.14.3 / KOrganizer 4.14.3 REQUEST, PGP/MIME signed (issue #18): the signed part
    // is a multipart/mixed labelled `Content-Transfer-Encoding: quoted-printable`, which RFC
    // 2045 §6.4 forbids on a multipart, and here it reads two ways (test in
    // tests/openpgp.rs): refused at that part's header, before any signature is checked. Not
    // in the re-signed subset: its signature is OpenPGP, and the rejection is the MIME's.
    Case {
        file: "kmail-4.14-korganizer-request-pgp-signed.mbox",
        expect: Expect::Reject(
            Reason::MalformedMime,
            "byte 435: Content-Transfer-Encoding other than 7bit, 8bit or binary on a multipart",
        ),
        sender: None,
    },
];

/// Real-client messages that ../shared/corpora already holds, read from there (ignored test
/// below; CI runs it): paths under the corpora folder.
const SHARED_CORPUS: &[Case] = &[Case {
    // Apple Mail / iCal 3.0 REPLY (ccs-calendarserver's imip test data, Apache-2.0). The
    // attachment's Content-Type is `text/calendar; x-unix-mode=0644; name=...`.
    file: "itip/ccs-imip/good_reply_past.eml",
    expect: Expect::Accept(&["no method parameter", "no charset parameter"]),
    sender: Some("xyzzy@example.com"),
}];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/clients")
}

fn corpus_bytes(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A corpus file as a message: an `.eml` exactly as found; an `.mbox` holding one message
/// read as an mbox is (RFC 4155: the `From ` separator line is the mbox's, not the message's;
/// `imipsec audit` reads it so); a bare `.ics` (fixtures that kept only the calendar) inside
/// the smallest message that carries it, the calendar bytes unchanged (the line ends of the
/// header section follow the calendar's).
fn corpus_message(name: &str) -> Vec<u8> {
    let bytes = corpus_bytes(name);
    if name.ends_with(".eml") {
        return bytes;
    }
    if name.ends_with(".mbox") {
        return mbox_message(&bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    let method = text
        .lines()
        .find_map(|line| line.strip_prefix("METHOD:"))
        .map(str::trim)
        .expect("a METHOD line")
        .to_owned();
    let eol = if bytes.windows(2).any(|w| w == b"\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = format!(
        "From: client@example.org{eol}To: {ATTENDEE}{eol}Subject: {name}{eol}\
         Date: Mon, 01 Jun 2026 00:00:00 +0000{eol}MIME-Version: 1.0{eol}\
         Content-Type: text/calendar; method={method}; charset=UTF-8{eol}\
         Content-Transfer-Encoding: 8bit{eol}{eol}"
    )
    .into_bytes();
    out.extend_from_slice(&bytes);
    out
}

/// The one message of a one-message mbox file: the bytes after its `From ` separator line.
/// The file must hold exactly one message and no quoted `>From ` line (the fixtures kept here
/// have none), so the message bytes are the file's bytes unchanged.
fn mbox_message(mbox: &[u8]) -> Vec<u8> {
    assert!(
        mbox.starts_with(b"From "),
        "an mbox starts with a From line"
    );
    let start = find(mbox, b"\n").expect("the From line ends") + 1;
    let message = &mbox[start..];
    assert!(
        find(message, b"\nFrom ").is_none() && find(message, b"\n>From ").is_none(),
        "one message, nothing quoted"
    );
    message.to_vec()
}

fn unsigned_allowed_pipeline() -> Pipeline {
    unsigned_allowed_pipeline_with(false)
}

fn unsigned_allowed_pipeline_with(strict_icalendar: bool) -> Pipeline {
    let trust = TrustStore::from_pem_files(
        &[certs().join("root.cert.pem")],
        &[certs().join("intermediate.crl.pem")],
    )
    .unwrap();
    let mut settings = Settings::new(trust);
    settings.identities = vec![identity("rsa2048/attendee")];
    settings.danger_allow_unsigned = true;
    settings.strict_icalendar = strict_icalendar;
    Pipeline::new(settings)
}

#[track_caller]
fn assert_expected(name: &str, verdict: &Verdict, expect: &Expect) {
    match expect {
        Expect::Accept(properties) => {
            assert!(
                verdict.is_accept(),
                "{name}: rejected: {:?}",
                verdict.reasons()
            );
            let details = deviations(verdict);
            assert_eq!(details.len(), properties.len(), "{name}: {details:?}");
            for property in *properties {
                assert!(
                    details
                        .iter()
                        .any(|d| d.contains(property) && d.contains("RFC")),
                    "{name}: no deviation naming {property} and its RFC rule: {details:?}"
                );
            }
            assert!(
                details.iter().all(|d| d.contains("RFC")),
                "{name}: {details:?}"
            );
        }
        Expect::Reject(reason, text) => {
            assert!(
                !verdict.is_accept(),
                "{name}: accepted, expected {reason:?}"
            );
            assert_eq!(
                verdict.primary_reason(),
                Some(*reason),
                "{name}: {:?}",
                verdict.reasons()
            );
            assert!(
                verdict.reasons().iter().any(|r| r.detail.contains(text)),
                "{name}: {:?}",
                verdict.reasons()
            );
        }
    }
}

#[test]
fn every_corpus_file_is_listed_once_with_its_expected_verdict() {
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "README.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|case| case.file.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "testdata/clients and CORPUS differ");
    let readme = String::from_utf8(corpus_bytes("README.md")).unwrap();
    for case in CORPUS {
        assert!(
            readme.contains(&format!("`{}`", case.file)),
            "{} has no row in testdata/clients/README.md",
            case.file
        );
    }
}

/// Every real-client message, as received, through the pipeline with unsigned calendars
/// allowed: the verdict and every deviation warning are the expected ones.
#[test]
fn every_corpus_message_gets_its_verdict_unsigned_allowed() {
    let pipeline = unsigned_allowed_pipeline();
    let strict = unsigned_allowed_pipeline_with(true);
    let ctx = Evaluation {
        at: AT,
        recipient: Some(ATTENDEE),
        record: false,
    };
    for case in CORPUS {
        check_unsigned_allowed(case, &corpus_message(case.file), &pipeline, &strict, &ctx);
    }
}

/// `raw` (the message of `case`) gets its expected verdict unsigned-allowed, and with
/// strict_icalendar exactly the messages accepted with a deviation are rejected
/// (malformed-icalendar or method-mismatch, each naming its RFC rule); the others keep
/// their verdict. A deviation warning says what strict mode refuses, and strict mode
/// refuses nothing else.
#[track_caller]
fn check_unsigned_allowed(
    case: &Case,
    raw: &[u8],
    pipeline: &Pipeline,
    strict: &Pipeline,
    ctx: &Evaluation<'_>,
) {
    let verdict = pipeline.evaluate(raw, ctx, None).unwrap();
    assert_expected(case.file, &verdict, &case.expect);
    let strict_verdict = strict.evaluate(raw, ctx, None).unwrap();
    match &case.expect {
        Expect::Accept(deviations) if !deviations.is_empty() => {
            assert!(
                !strict_verdict.is_accept(),
                "{}: strict accepted",
                case.file
            );
            assert!(
                strict_verdict.reasons().iter().all(|r| matches!(
                    r.code,
                    Reason::MalformedIcalendar | Reason::MethodMismatch
                ) && r.detail.contains("RFC")),
                "{}: {:?}",
                case.file,
                strict_verdict.reasons()
            );
        }
        expect => assert_expected(case.file, &strict_verdict, expect),
    }
}

/// The iCloud invitation without the capture's leading line of spaces: base64 `.ics`
/// attachment beside a quoted-printable multipart/alternative with text/html; accepted.
#[test]
fn icloud_invitation_without_the_capture_artefact_is_accepted() {
    let raw = corpus_bytes("icloud-request-qp-html-attachment.eml");
    let start = find(&raw, b"\nDelivered-To:").expect("the first header field") + 1;
    let verdict = unsigned_allowed_pipeline()
        .evaluate(
            &raw[start..],
            &Evaluation {
                at: AT,
                recipient: Some(ATTENDEE),
                record: false,
            },
            None,
        )
        .unwrap();
    assert_expected(
        "icloud (trimmed)",
        &verdict,
        &Expect::Accept(&["no charset parameter"]),
    );
}

/// A directory with a certificate and key for each corpus sender, issued at test time by the
/// test PKI's intermediate CA (`openssl ca`, valid 2025-2045 like every test identity).
struct SenderPki {
    dir: PathBuf,
}

impl SenderPki {
    fn new(tag: &str) -> SenderPki {
        let dir = std::env::temp_dir().join(format!(
            "imipsec-clients-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.txt"), b"").unwrap();
        std::fs::write(dir.join("serial"), b"7000\n").unwrap();
        let config = format!(
            "[ca]\ndefault_ca = corpus\n[corpus]\ndir = {dir}\ndatabase = $dir/index.txt\n\
             serial = $dir/serial\nnew_certs_dir = $dir\ncertificate = {cert}\n\
             private_key = {key}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
             copy_extensions = none\n[any]\ncommonName = supplied\n[ee]\n\
             basicConstraints = critical, CA:false\n\
             keyUsage = critical, digitalSignature, keyAgreement\n\
             extendedKeyUsage = emailProtection\nsubjectAltName = email:$ENV::EMAIL\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
            dir = dir.display(),
            cert = certs().join("intermediate.cert.pem").display(),
            key = certs().join("intermediate.key.pem").display(),
        );
        std::fs::write(dir.join("ca.cnf"), config).unwrap();
        SenderPki { dir }
    }

    /// Issue (once) the certificate of `email`; returns (certificate, key) paths.
    fn issue(&self, email: &str) -> (String, String) {
        let cert = self.dir.join(format!("{email}.cert.pem"));
        let key = self.dir.join(format!("{email}.key.pem"));
        if !cert.exists() {
            let csr = self.dir.join(format!("{email}.csr"));
            run(Command::new("openssl").args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/O=imipsec corpus senders/CN=corpus sender",
                "-keyout",
                &key.to_string_lossy(),
                "-out",
                &csr.to_string_lossy(),
            ]));
            run(Command::new("openssl").env("EMAIL", email).args([
                "ca",
                "-batch",
                "-notext",
                "-config",
                &self.dir.join("ca.cnf").to_string_lossy(),
                "-extensions",
                "ee",
                "-startdate",
                "20250101000000Z",
                "-enddate",
                "20450101000000Z",
                "-in",
                &csr.to_string_lossy(),
                "-out",
                &cert.to_string_lossy(),
            ]));
        }
        (
            cert.to_string_lossy().into_owned(),
            key.to_string_lossy().into_owned(),
        )
    }
}

impl Drop for SenderPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("the openssl CLI is installed");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `raw` in canonical form (CRLF), split into the fields of its header section (each with
/// its continuation lines and CRLF) and its body.
fn split_message(raw: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let text = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header section");
    let mut fields: Vec<Vec<u8>> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some(field) if line.starts_with([' ', '\t']) => {
                field.extend_from_slice(line.as_bytes());
                field.extend_from_slice(b"\r\n");
            }
            _ => fields.push(format!("{line}\r\n").into_bytes()),
        }
    }
    (fields, body.as_bytes().to_vec())
}

/// The message signed by `sender` with `openssl cms -sign`: its MIME entity (the Content-*
/// fields and the body, unchanged but for CRLF line ends) becomes the first part of a
/// multipart/signed; the other header fields stay on the outside.
fn corpus_signed(raw: &[u8], pki: &SenderPki, sender: &str) -> Vec<u8> {
    let (fields, body) = split_message(raw);
    let mut outer = Vec::new();
    let mut entity = Vec::new();
    for field in fields {
        let name = String::from_utf8_lossy(&field).to_ascii_lowercase();
        if name.starts_with("content-") {
            entity.extend_from_slice(&field);
        } else if !name.starts_with("mime-version:") {
            outer.extend_from_slice(&field);
        }
    }
    entity.extend_from_slice(b"\r\n");
    entity.extend_from_slice(&body);
    let (cert, key) = pki.issue(sender);
    let chain = certs()
        .join("intermediate.cert.pem")
        .to_string_lossy()
        .into_owned();
    let cms = openssl(
        &[
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            &cert,
            "-inkey",
            &key,
            "-certfile",
            &chain,
            "-outform",
            "DER",
        ],
        &entity,
    );
    outer.extend_from_slice(b"MIME-Version: 1.0\r\n");
    outer.extend_from_slice(&multipart_signed(&entity, &cms));
    outer
}

/// The signed subset: each message re-signed by its sender's certificate (issued at test time)
/// with the `openssl cms` CLI gets the same verdict and deviations as unsigned-allowed, with
/// the signature checked (no unsigned allowance). Signed by a party the calendar does not
/// name, the same message is `signer-not-correlated`.
#[test]
fn corpus_messages_resigned_by_their_sender_get_the_same_verdict() {
    let pki = SenderPki::new("signed");
    let mut signed_rows = 0;
    for case in CORPUS {
        let Some(sender) = case.sender else { continue };
        check_resigned(case, &corpus_message(case.file), &pki, sender);
        signed_rows += 1;
    }
    assert!(
        signed_rows >= 10,
        "the signed subset shrank to {signed_rows}"
    );
    // A stranger's signature on a real invitation decides nothing.
    let forged = corpus_signed(
        &corpus_message("outlook-365-request-base64-html.eml"),
        &pki,
        "mallory@example.net",
    );
    assert_rejected(&evaluate(&forged), Reason::SignerNotCorrelated);
}

/// `raw` (the message of `case`) re-signed by `sender` gets its expected verdict with the
/// signature checked, and the verified signer is `sender`.
#[track_caller]
fn check_resigned(case: &Case, raw: &[u8], pki: &SenderPki, sender: &str) {
    let verdict = evaluate(&corpus_signed(raw, pki, sender));
    assert_expected(case.file, &verdict, &case.expect);
    let signed_by_sender = verdict.layers().iter().any(|layer| {
        layer.status == LayerStatus::Verified
            && layer
                .signers
                .iter()
                .any(|s| s.chain == "valid" && s.emails.iter().any(|e| e == sender))
    });
    assert!(signed_by_sender, "{}: {:?}", case.file, verdict.layers());
}

/// The real-client messages of ../shared/corpora (SHARED_CORPUS), as received: the same
/// unsigned-allowed, strict and re-signed checks as the rows of testdata/clients.
#[test]
#[ignore = "needs IMIPSEC_CORPORA=../shared/corpora"]
fn shared_corpus_client_messages_get_their_verdicts() {
    let pipeline = unsigned_allowed_pipeline();
    let strict = unsigned_allowed_pipeline_with(true);
    let ctx = Evaluation {
        at: AT,
        recipient: Some(ATTENDEE),
        record: false,
    };
    let pki = SenderPki::new("shared");
    for case in SHARED_CORPUS {
        let path = corpora().join(case.file);
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check_unsigned_allowed(case, &raw, &pipeline, &strict, &ctx);
        if let Some(sender) = case.sender {
            check_resigned(case, &raw, &pki, sender);
        }
    }
}

/// The Exchange 2010 REQUEST (testdata/clients/exchange-2010-request.ics) with its parties
/// mapped onto the test identities, in CRLF; `exception` turns it into the update of one
/// instance: a RECURRENCE-ID line (without the name) and the new SEQUENCE.
fn exchange_request(exception: Option<(&str, u32)>) -> Vec<u8> {
    let mut ics = client("exchange-2010-request.ics")
        .replace(
            "MAILTO:inbox.apptest2@inboxapp.onmicrosoft.com",
            &format!("mailto:{ORGANIZER}"),
        )
        .replace("MAILTO:karim@nilas.com", &format!("mailto:{ATTENDEE}"))
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    if let Some((recurrence_id, sequence)) = exception {
        ics = ics
            .replace(
                "SUMMARY;LANGUAGE=fr-FR:Pommes\r\n",
                &format!("SUMMARY;LANGUAGE=fr-FR:Pommes\r\nRECURRENCE-ID{recurrence_id}\r\n"),
            )
            .replace("SEQUENCE:4\r\n", &format!("SEQUENCE:{sequence}\r\n"));
    }
    openssl_signed("rsa2048/organizer", ORGANIZER, &entity(&ics, "REQUEST"))
}

/// Issues 12 and 15: Outlook and Exchange write the exception of a recurring meeting
/// relative to the meeting's Windows zone (`RECURRENCE-ID;TZID=Romance Standard Time:...`)
/// with that zone's VTIMEZONE (DTSTART in 1601, `BYDAY=-1SU;BYMONTH=10`). With event state
/// checked every such update was refused (`unsupported-recurrence-id`), so a gate with a
/// store refused real clients' exception updates. It is now keyed by its UTC instant
/// (09:30 Paris in February is 08:30Z): accepted, and the same instance written in UTC is
/// the same key for the replay protection.
#[test]
fn outlook_exception_update_in_its_windows_zone_is_accepted_with_event_state_checked() {
    let pipeline = pipeline();
    let store = SqliteStore::open_in_memory().unwrap();
    // Control: the client's REQUEST as it was written.
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &exchange_request(None),
    ));
    let update = exchange_request(Some((";TZID=Romance Standard Time:20150227T093000", 5)));
    assert_accepted(&evaluate_recorded(&pipeline, &store, &update));
    // The same instance in UTC with the older SEQUENCE is a replay of that instance...
    assert_rejected(
        &evaluate_recorded(
            &pipeline,
            &store,
            &exchange_request(Some((":20150227T083000Z", 4))),
        ),
        Reason::StaleSequence,
    );
    // ...while 09:30Z (10:30 in Paris) is another instance.
    assert_accepted(&evaluate_recorded(
        &pipeline,
        &store,
        &exchange_request(Some((":20150227T093000Z", 4))),
    ));
}
