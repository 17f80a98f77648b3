//! `calendar::structure_parser` keeps every header field but the MIME ones raw (issue 17).
//! It must read exactly the structure a default mail-parser reads: the same parts at the same
//! offsets, the same transfer encodings, MIME fields and decoded bodies, forwarded messages
//! included. Checked over every message of the repository's test data and, ignored unless
//! `IMIPSEC_CORPORA` is set, of ../shared/corpora; the mime_walk fuzz target checks it too.

#![allow(clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};

use imipsec_smime::calendar::structure_parser;
use mail_parser::{HeaderName, Message, MessageParser, PartType};

fn structure(parser: &MessageParser, data: &[u8]) -> Option<Vec<String>> {
    fn walk(message: &Message<'_>, out: &mut Vec<String>) {
        for part in &message.parts {
            let field = |name| {
                format!(
                    "{:?}",
                    part.headers
                        .iter()
                        .find(|h| h.name == name)
                        .map(|h| &h.value)
                )
            };
            out.push(format!(
                "{} {} {} {:?} {} {} {} {:?}",
                part.offset_header,
                part.offset_body,
                part.offset_end,
                part.encoding,
                field(HeaderName::ContentType),
                field(HeaderName::ContentTransferEncoding),
                field(HeaderName::ContentDisposition),
                part.contents()
            ));
            if let PartType::Message(nested) = &part.body {
                walk(nested, out);
            }
        }
    }
    let message = parser.parse(data)?;
    let mut out = Vec::new();
    walk(&message, &mut out);
    Some(out)
}

fn messages_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            messages_under(&path, found);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "eml" || ext == "msg" || ext == "txt" || ext == "mbox")
        {
            found.push(path);
        }
    }
}

fn check_all(dir: &Path) -> usize {
    let mut paths = Vec::new();
    messages_under(dir, &mut paths);
    for path in &paths {
        let data = std::fs::read(path).expect("read a test message");
        let full = structure(&MessageParser::new(), &data);
        assert_eq!(
            structure(structure_parser(), &data),
            full,
            "{} is read differently",
            path.display()
        );
    }
    paths.len()
}

#[test]
fn same_structure_as_a_default_mail_parser_on_the_test_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = check_all(&root.join("testdata")) + check_all(&root.join("crates"));
    assert!(checked >= 5, "only {checked} messages found");
}

#[test]
fn same_structure_with_every_header_kind_and_a_forward() {
    let message = b"Received: from a.example by b.example; Tue, 1 Jul 2003 10:52:37 +0200\r\n\
From: \"A, B\" <a@example.com>\r\nTo: c@example.com\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n\
Message-ID: <x@y>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: d@example.com\r\nContent-Type: text/calendar; method=REQUEST\r\n\
Content-Transfer-Encoding: base64\r\n\r\nQkVHSU46VkNBTEVOREFSDQo=\r\n--b\r\n\
Content-Type: application/octet-stream; name=\"x.ics\"\r\nContent-Disposition: attachment; filename=x.ics\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nBEGIN:VCALENDAR=0D=0A\r\n--b--\r\n";
    let full = structure(&MessageParser::new(), message).expect("parses");
    assert_eq!(full.len(), 5, "{full:#?}");
    assert_eq!(structure(structure_parser(), message), Some(full));
}

#[test]
#[ignore = "needs ../shared/corpora (IMIPSEC_CORPORA); .ci/run runs it"]
fn same_structure_as_a_default_mail_parser_on_the_corpora() {
    let corpora =
        std::env::var_os("IMIPSEC_CORPORA").expect("IMIPSEC_CORPORA names ../shared/corpora");
    let checked = check_all(Path::new(&corpora));
    assert!(checked >= 300, "only {checked} messages found");
}
