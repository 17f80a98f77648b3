//! One module per command; [`run`] dispatches and turns errors into exit status 2.

pub mod audit;
pub mod delegate;
pub mod gate;
pub mod generate;
pub mod sign;
pub mod store;
pub mod verify;

use std::error::Error;
use std::process::ExitCode;

use crate::cli::Command;

/// How a command ended; the process exit status documented in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: accepted (verify), done (every other command).
    Success,
    /// 1: the message was rejected (verify).
    Rejected,
    /// 2: the command could not evaluate; the reason was printed on stderr.
    Error,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Rejected => ExitCode::from(1),
            Exit::Error => ExitCode::from(2),
        }
    }
}

/// Runs `command`; an error is printed on stderr with its chain of causes.
pub fn run(command: Command) -> Exit {
    let result = match command {
        Command::Verify(args) => verify::run(&args).map_err(boxed),
        Command::Sign(args) => sign::run(&args).map_err(boxed),
        Command::Audit(args) => audit::run(&args).map_err(boxed),
        Command::Delegate(args) => delegate::run(&args).map_err(boxed),
        Command::Gate(args) => gate::run(&args).map_err(boxed),
        Command::Store(args) => store::run(&args).map_err(boxed),
        Command::Generate(args) => generate::run(&args).map_err(boxed),
    };
    result.unwrap_or_else(|error| {
        report(error.as_ref());
        Exit::Error
    })
}

fn boxed<E: Error + 'static>(error: E) -> Box<dyn Error> {
    Box::new(error)
}

/// Prints [`render`]ed `error` on stderr.
pub fn report(error: &(dyn Error + 'static)) {
    eprintln!("{}", render(error));
}

/// The one line every command error is shown as: `imipsec: error: <error>: <cause>...`, then a
/// hint where the fix is known.
///
/// The one rendering path of the CLI, so that each rule holds for every error: a cause whose
/// text the line already holds is dropped (an error that prints its source, as
/// `std::io::Error` wrappers and SQLite's do, would otherwise repeat it: "No such file or
/// directory (os error 2): No such file or directory (os error 2)"); OpenSSL error stacks are
/// cut to their reason strings (no `../crypto/pkcs12/p12_kiss.c:71`); line breaks inside a
/// message are folded, so that the message stays one line for scripts and logs.
pub fn render(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(cause) = current {
        let text = one_line(&openssl_reasons(&cause.to_string()));
        let folded = text.to_lowercase();
        if !text.is_empty()
            && !parts
                .iter()
                .any(|part| part.to_lowercase().contains(&folded))
        {
            parts.push(text);
        }
        current = cause.source();
    }
    let mut line = format!("imipsec: error: {}", parts.join(": "));
    if let Some(hint) = hint(error) {
        line.push_str(" (hint: ");
        line.push_str(hint);
        line.push(')');
    }
    line
}

/// A known fix for an error anywhere in the chain.
fn hint(error: &(dyn Error + 'static)) -> Option<&'static str> {
    use imipsec_pipeline::smime::keys::KeyError;
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(key) = cause.downcast_ref::<KeyError>()
            && key.is_password_problem()
        {
            return Some(
                "is --identity-password-env (or --password-file) set, to the identity's password?",
            );
        }
        current = cause.source();
    }
    None
}

/// Folds line breaks (multi-line messages from parsers) into `; `.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rewrites OpenSSL error stacks in `text` to their reason strings: an entry
/// `error:0308010C:library:function:reason:file.c:123:data` becomes `reason` (`: data` when
/// there is data), and a bare `reason:../crypto/x/y.c:71:` loses its source location.
fn openssl_reasons(text: &str) -> String {
    let mut out = Vec::new();
    for entry in text.split(", ") {
        let mut fields: Vec<&str> = entry.split(':').collect();
        // `error:` + 8 hex digits: drop the code, the library and the function.
        if fields.len() >= 4
            && fields.first() == Some(&"error")
            && fields.get(1).is_some_and(|code| {
                code.len() == 8 && code.bytes().all(|byte| byte.is_ascii_hexdigit())
            })
        {
            fields.drain(..4.min(fields.len() - 1));
        }
        // `path.c` followed by a line number: the source location, dropped.
        if let Some(position) = fields.iter().position(|field| {
            field.ends_with(".c") || field.ends_with(".h") || field.ends_with(".cc")
        }) && fields
            .get(position + 1)
            .is_some_and(|line| !line.is_empty() && line.bytes().all(|byte| byte.is_ascii_digit()))
        {
            let data: Vec<&str> = fields.split_off(position).into_iter().skip(2).collect();
            let data = data.join(":");
            let mut entry = fields.join(":");
            if !data.is_empty() {
                entry.push_str(": ");
                entry.push_str(&data);
            }
            out.push(entry);
            continue;
        }
        out.push(fields.join(":"));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read identity alice.pem")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("store unavailable: {0}")]
    struct Repeats(#[source] std::io::Error);

    // Issue #14: "No such file or directory (os error 2): No such file or directory (os
    // error 2)" and SQLite's triple "unable to open database file".
    #[test]
    fn a_cause_already_shown_is_not_repeated() {
        let missing = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let line = render(&Outer(missing()));
        assert_eq!(line.matches("entity not found").count(), 1, "{line}");
        let line = render(&Repeats(missing()));
        assert_eq!(line.matches("entity not found").count(), 1, "{line}");
    }

    // Issue #14: `mac verify failure:../crypto/pkcs12/p12_kiss.c:71:`.
    #[test]
    fn openssl_stacks_lose_source_paths() {
        assert_eq!(
            openssl_reasons("mac verify failure:../crypto/pkcs12/p12_kiss.c:71:"),
            "mac verify failure"
        );
        assert_eq!(
            openssl_reasons(
                "error:11800071:PKCS12 routines:PKCS12_parse:mac verify failure:../crypto/pkcs12/p12_kiss.c:71:, \
                 error:1E08010C:DECODER routines:OSSL_DECODER_from_bio:unsupported:crypto/encode_decode/decoder_lib.c:102:No supported data to decode. Input type: DER"
            ),
            "mac verify failure, unsupported: No supported data to decode. Input type: DER"
        );
        assert_eq!(
            openssl_reasons("plain text: with colons"),
            "plain text: with colons"
        );
    }

    #[test]
    fn multi_line_messages_become_one_line() {
        #[derive(Debug, thiserror::Error)]
        #[error(
            "TOML parse error at line 2, column 1\n  |\n2 | colour = 1\n  | ^^^^^^\nunknown field"
        )]
        struct Multi;
        let line = render(&Multi);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("line 2, column 1"), "{line}");
    }

    #[test]
    fn a_password_problem_gets_the_hint() {
        let der = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/rsa2048/attendee.p12"),
        )
        .unwrap();
        let error =
            imipsec_pipeline::smime::keys::Identity::from_pkcs12(&der, "wrong").unwrap_err();
        let line = render(&error);
        assert!(line.contains("is --identity-password-env"), "{line}");
        assert!(!line.contains(".c:"), "{line}");
    }
}
