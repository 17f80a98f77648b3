//! Command-line interface: the clap definitions of every `imipsec` command.
//!
//! This module is a contract shared by the command implementations (`src/cmd/*`), the
//! generated shell completions and the man page (`doc/imipsec.1`): flag names here are the
//! user-facing interface and change only deliberately.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imipsec_pipeline::smime::RevocationMode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Exit statuses, shown in every command's help.
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  accepted (verify), done (other commands)
  1  rejected (verify); refused because a gate would reject it (sign)
  2  could not evaluate: bad arguments, unreadable input, configuration or store error";

/// Verify-then-process security gate, audit and signer for iMIP calendar email (RFC 6047).
///
/// A calendar message is accepted only if its S/MIME signature verifies against the trust
/// anchors, the signer is the ORGANIZER or ATTENDEE the iTIP method allows to act (or a
/// SENT-BY delegate recorded in the policy store), and the event state permits it.
#[derive(Debug, Parser)]
#[command(
    name = "imipsec",
    version,
    about = "Verify-then-process security gate, audit and signer for iMIP calendar email",
    after_help = EXIT_STATUS_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every `imipsec` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify one iMIP message: S/MIME, signer correlation, delegation and state checks.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Sign (and optionally encrypt) an iMIP message with an S/MIME identity.
    #[command(after_help = SIGN_HELP)]
    Sign(SignArgs),
    /// Evaluate every message of mailboxes (mbox, Maildir, folders of .eml) and report.
    #[command(after_help = AUDIT_HELP)]
    Audit(AuditArgs),
    /// Manage SENT-BY delegations in the policy store.
    #[command(after_help = DELEGATE_HELP)]
    Delegate(DelegateArgs),
    /// Run the security gate: a milter and/or an LMTP proxy in front of the mailbox server.
    #[command(after_help = GATE_HELP)]
    Gate(GateArgs),
    /// Create or migrate the policy store.
    #[command(after_help = STORE_HELP)]
    Store(StoreCommandArgs),
    /// Generate shell completions or the man pages from these definitions.
    Generate(GenerateArgs),
}

const VERIFY_HELP: &str = "\
Examples:
  imipsec verify invite.eml --trust certs/root.cert.pem --recipient bob@example.org
  imipsec verify --json --at 2026-06-01T00:00:00Z --trust ca.pem < invite.eml
  imipsec verify --config /etc/imipsec.toml --record invite.eml

A store named by --store or the configuration must exist (`imipsec store init --store PATH`
creates one); with --record a missing store is created.

Exit status:
  0  accepted
  1  rejected (the reasons are printed; --json gives them as codes)
  2  could not evaluate: bad arguments, unreadable input, configuration or store error";

const SIGN_HELP: &str = "\
Examples:
  imipsec sign --identity alice.p12 --identity-password-env ALICE_PW invite.eml > signed.eml
  imipsec sign --identity alice.pem --password-file ~/.alice.pw --opaque --encrypt-to bob.cert.pem invite.eml
  imipsec sign --identity alice.pem --trust root.pem --from 'Alice Example <alice@example.org>' \\
      --to bob@example.org --subject 'Team meeting' < request.ics

There is no unsigned output: --identity is required. The identity is checked as a gate
checks a signer, at --at: validity, extendedKeyUsage emailProtection and keyUsage, key size
and algorithms ([policy] of the configuration), and, when anchors are given (--trust or
[trust] anchors), the chain to them and the CRLs. An identity a gate would reject is refused
(exit 1, reason code on stderr: certificate-expired, certificate-purpose, weak-algorithm,
untrusted-certificate, certificate-revoked) unless --danger-skip-identity-checks is given.
Encrypted keys (PKCS#12, PKCS#8 ENCRYPTED PRIVATE KEY, traditional Proc-Type: 4,ENCRYPTED)
take their password from --identity-password-env or --password-file.

Exit status:
  0  signed message written to standard output
  1  refused: a gate would reject the message or the identity (reason code on stderr)
  2  could not sign: bad arguments, unreadable identity or input; nothing on stdout";

const STORE_HELP: &str = "\
Examples:
  imipsec store init --store /var/lib/imipsec/policy.db
  imipsec store init --config /etc/imipsec.toml

`init` creates an empty store, or migrates an existing one to this version's schema; it is
safe to run again. Commands that only read the store (verify without --record, audit
without --record, delegate list, history and export) refuse a missing one; commands that
write (verify --record, audit --record, delegate grant, revoke and import, gate) create it.

Exit status:
  0  the store exists at the current schema version
  2  error: bad arguments, unwritable path, not an imipsec store, newer schema";

const AUDIT_HELP: &str = "\
Examples:
  imipsec audit ~/Mail/inbox.mbox ~/Maildir --trust certs/root.cert.pem
  imipsec audit testdata/sample-mailbox --trust certs/root.cert.pem --at 2026-06-01T00:00:00Z
  imipsec audit archive/ --config /etc/imipsec.toml --jsonl out.jsonl --csv out.csv --html report.html
  zcat old.mbox.gz | imipsec audit - --trust certs/root.cert.pem

PATH may be an mbox file (gzipped too), a Maildir (with cur/ and new/), an MH folder
(numbered files), a folder searched recursively for .eml, .mbox and .mbox.gz files and
Maildirs, or - for an mbox on standard input. A folder holding none of these is an error.
Messages are evaluated read-only (nothing is recorded in the store) unless --record is given.

Each message is classed accept, reject (calendar mail that failed a check), not-calendar
(mail without calendar content), not-decrypted (encrypted to a key the audit was not given:
its content is unknown) or error. Only verified signers are credited in the signer table.
Without a store, event state (organizer on record, SEQUENCE, replays) is not checked, and
every report says so. Reports are written to a temporary file and renamed when complete.

Exit status:
  0  the audit ran (whatever the verdicts; see the summary and reports)
  2  the audit could not run: bad arguments, unreadable path, configuration or store error";

const DELEGATE_HELP: &str = "\
Examples:
  imipsec delegate grant --principal boss@example.org --delegate assistant@example.org
  imipsec delegate grant --principal boss@example.org --delegate pa@example.org \\
      --methods REQUEST,CANCEL --until 2026-12-31T00:00:00Z --note 'until the reorg'
  imipsec delegate list --principal boss@example.org --json
  imipsec delegate revoke --id 3
  imipsec delegate export backup.json && imipsec delegate import backup.json

Exit status:
  0  done
  2  error: bad arguments, unreadable or invalid store or input file";

const GRANT_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate grant --store policy.db --principal boss@example.org --delegate pa@example.org\n",
    "  imipsec delegate grant --principal boss@example.org --delegate pa@example.org \\\n",
    "      --methods organizer --from 2026-06-01T00:00:00Z --until 2026-09-01T00:00:00Z --note 'summer'\n\n",
    "--methods takes iTIP methods (PUBLISH, REQUEST, REPLY, ADD, CANCEL, REFRESH, COUNTER,\n",
    "DECLINECOUNTER), `all`, or a side: `organizer` (PUBLISH REQUEST ADD CANCEL DECLINECOUNTER) or\n",
    "`attendee` (REPLY COUNTER REFRESH). The store file is created when missing.\n\n",
    "Exit status:\n  0  done\n  2  error: bad arguments, unreadable or invalid store or input file"
);

const REVOKE_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate revoke --id 3 --note 'left the company'\n",
    "  imipsec delegate revoke --principal boss@example.org --delegate pa@example.org\n\n",
    "Revocations keep the grant in the history (see `delegate history`).\n\n",
    "Exit status:\n  0  done\n  2  error: unknown id, bad arguments, unreadable or invalid store"
);

const LIST_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate list\n",
    "  imipsec delegate list --principal boss@example.org --at 2026-06-01T00:00:00Z\n",
    "  imipsec delegate list --all --json\n\n",
    "JSON fields: id, principal, delegate, methods (null = all), side, not_before, until, note,\n",
    "recorded_by, recorded_at, revoked_at, revoked_by, revoke_reason, in_force.\n\n",
    "A missing store is an error: create one with `imipsec store init --store PATH`.\n\n",
    "Exit status:\n  0  done\n  2  error: bad arguments, unreadable or invalid store"
);

const HISTORY_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate history --principal boss@example.org\n",
    "  imipsec delegate history --principal boss@example.org --json\n\n",
    "JSON fields: sequence, grant, action (granted, imported, revoked), at, by, principal,\n",
    "delegate, detail (note or revocation reason).\n\n",
    "A missing store is an error: create one with `imipsec store init --store PATH`.\n\n",
    "Exit status:\n  0  done\n  2  error: bad arguments, unreadable or invalid store"
);

const IMPORT_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate import --store new.db backup.json\n\n",
    "All or nothing: an invalid grant imports none. The store file is created when missing.\n\n",
    "Exit status:\n  0  done\n  2  error: unreadable or invalid file, unreadable or invalid store"
);

const EXPORT_HELP: &str = concat!(
    "Examples:\n",
    "  imipsec delegate export backup.json\n",
    "  imipsec delegate export --store policy.db | jq .\n\n",
    "A missing store is an error: create one with `imipsec store init --store PATH`.\n\n",
    "Exit status:\n  0  done\n  2  error: unreadable or invalid store, unwritable file"
);

/// Trust and evaluation flags shared by `verify` and `audit`.
///
/// Every flag overrides the matching entry of the configuration file (`--config`).
#[derive(Debug, Clone, Default, Args)]
pub struct TrustArgs {
    /// Trust anchors: a PEM bundle, a DER certificate, or a directory of them (every .pem,
    /// .crt, .cer, .der and hashed-name file); repeat for several. For S/MIME use anchors
    /// with the email trust bit (contrib/nss-email-anchors.sh), not the TLS system store.
    #[arg(long = "trust", value_name = "PATH")]
    pub trust: Vec<PathBuf>,
    /// Untrusted intermediate CA certificates (PEM bundle, DER or directory) used to build
    /// paths when a message leaves them out; never anchors. Repeat for several.
    #[arg(long = "intermediates", value_name = "PATH")]
    pub intermediates: Vec<PathBuf>,
    /// Certificate revocation list (PEM or DER); repeat for several. A CRL past its
    /// nextUpdate is reported when loaded.
    #[arg(long = "crl", value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Revocation checking: off, if-available (check where a CRL or OCSP answer is had;
    /// default) or require (every certificate below the anchor needs one; without one the
    /// signer is untrusted, and a responder that cannot be reached makes the message
    /// unevaluable: exit 2 / 451).
    #[arg(long = "revocation", value_name = "MODE", value_parser = parse_revocation)]
    pub revocation: Option<RevocationMode>,
    /// Initial certificate policy (dotted OID, RFC 5280 §6.1.1); repeat for several. When
    /// given, a chain must be valid for one of them (explicit policy). Default anyPolicy.
    #[arg(long = "policy", value_name = "OID")]
    pub policy: Vec<String>,
    /// Decryption identity: PEM key and certificate, or PKCS#12; repeat for several.
    #[arg(long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Environment variable holding the password of the PKCS#12 or encrypted PEM identities
    /// (and of the --openpgp-identity keys).
    #[arg(long, value_name = "VAR")]
    pub identity_password_env: Option<String>,
    /// File whose first line is the password of the identities (instead of a variable).
    #[arg(long, value_name = "FILE", conflicts_with = "identity_password_env")]
    pub password_file: Option<PathBuf>,
    /// OpenPGP certificates the operator vouches for (PGP/MIME signers): a file as `gpg
    /// --export` writes it (armored or binary, one or many keys) or a directory of them;
    /// repeat for several. Only user IDs with a valid self-signature name a signer.
    #[arg(long = "openpgp-certs", value_name = "FILE|DIR")]
    pub openpgp_certs: Vec<PathBuf>,
    /// OpenPGP secret key to decrypt PGP/MIME with (`gpg --export-secret-keys`), its password
    /// from --identity-password-env or --password-file; repeat for several.
    #[arg(long = "openpgp-identity", value_name = "KEY")]
    pub openpgp_identity: Vec<PathBuf>,
    /// Policy store: a SQLite file, or a postgresql://USER@HOST:PORT/DB URL (password from
    /// PGPASSWORD or ~/.pgpass, never on the command line) [env: IMIPSEC_STORE].
    #[arg(long, value_name = "PATH", env = "IMIPSEC_STORE", hide_env = true)]
    pub store: Option<PathBuf>,
    /// Address the message was delivered to (the iTIP recipient): the scope of the event
    /// state. Default: `[recipient] default` of the config, else one shared default scope.
    #[arg(long, value_name = "ADDR")]
    pub recipient: Option<String>,
    /// Evaluation time (RFC 3339, e.g. 2026-06-01T00:00:00Z); default now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
    /// Configuration file (TOML); flags override it [env: IMIPSEC_CONFIG].
    #[arg(long, value_name = "FILE", env = "IMIPSEC_CONFIG", hide_env = true)]
    pub config: Option<PathBuf>,
    /// DANGER: evaluate unsigned messages as if signed by the ORGANIZER/ATTENDEE they name.
    #[arg(long)]
    pub danger_allow_unsigned: bool,
    /// Reject the iCalendar deviations real clients write (the interoperability profile:
    /// `_` in X- names, VALARM in a REPLY, REQUEST without SUMMARY, COUNTER without
    /// SEQUENCE) and the other tolerated defects, instead of accepting them with a warning.
    #[arg(long)]
    pub strict_icalendar: bool,
    /// Fetch revocation status over http for every certificate of a signer's chain: OCSP from
    /// its AIA first, then its CRL distribution points (http only, no redirects, 5 s connect
    /// and 10 s transfer timeouts, 64 KiB OCSP / 20 MiB CRL limits); overrides `[trust]
    /// fetch_revocation`.
    #[arg(long)]
    pub fetch_revocation: bool,
    /// Folder caching fetched OCSP answers and CRLs until their nextUpdate (created mode 0700);
    /// a cached answer is used without network, also when the responder is down. Overrides
    /// `[trust] revocation_cache`; default: no cache (the gate: `revocation-cache` beside its
    /// store).
    #[arg(long, value_name = "DIR")]
    pub revocation_cache: Option<PathBuf>,
}

/// Arguments of `imipsec verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The message (RFC 5322); standard input if absent or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Trust anchors, store, time and configuration.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Record an accepted message in the store's event state (sequence numbers, replays).
    #[arg(long)]
    pub record: bool,
    /// Print the verdict as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

/// Digest algorithm of an S/MIME signature (RFC 8551 section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DigestArg {
    /// SHA-256.
    #[default]
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Content-encryption algorithm of an S/MIME enveloped message (RFC 8551 section 2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CipherArg {
    /// AES-256 in GCM mode (AuthEnvelopedData, RFC 5083).
    #[default]
    #[value(name = "aes256-gcm")]
    Aes256Gcm,
    /// AES-256 in CBC mode (EnvelopedData), for older clients.
    #[value(name = "aes256-cbc")]
    Aes256Cbc,
}

/// Arguments of `imipsec sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The message (RFC 5322) or a bare iCalendar object; standard input if absent or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Signing identity: PEM key and certificates, or PKCS#12. Required (or --openpgp-key).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "openpgp_key",
        conflicts_with = "openpgp_key"
    )]
    pub identity: Option<PathBuf>,
    /// Sign with this OpenPGP secret key instead (`gpg --export-secret-keys`): a PGP/MIME
    /// message (RFC 3156); its password from --identity-password-env or --password-file.
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with_all = ["opaque", "encrypt_to", "trust", "crl", "intermediates"]
    )]
    pub openpgp_key: Option<PathBuf>,
    /// Encrypt to this OpenPGP certificate (`gpg --export`) after signing with --openpgp-key
    /// (PGP/MIME, RFC 3156 §4, sign then encrypt); repeat for several.
    #[arg(long, value_name = "CERT", requires = "openpgp_key")]
    pub encrypt_to_openpgp: Vec<PathBuf>,
    /// Environment variable holding the identity's password (PKCS#12 or encrypted PEM key).
    #[arg(long, value_name = "VAR")]
    pub identity_password_env: Option<String>,
    /// File whose first line is the identity's password (instead of a variable).
    #[arg(long, value_name = "FILE", conflicts_with = "identity_password_env")]
    pub password_file: Option<PathBuf>,
    /// Trust anchors a gate trusts (PEM bundle, DER or directory): the identity must chain to
    /// them; repeat for several.
    #[arg(long = "trust", value_name = "PATH")]
    pub trust: Vec<PathBuf>,
    /// Intermediate CA certificates (PEM bundle, DER or directory) to include in the
    /// signature's certificates besides the identity's own chain, so that recipients can
    /// build the path; repeat for several.
    #[arg(long = "intermediates", value_name = "PATH")]
    pub intermediates: Vec<PathBuf>,
    /// Certificate revocation list (PEM or DER) checked with --trust; repeat for several.
    #[arg(long = "crl", value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// DANGER: sign even with an identity a gate would reject (expired, wrong purpose, weak
    /// key, untrusted): only for testing a gate's rejections.
    #[arg(long)]
    pub danger_skip_identity_checks: bool,
    /// Produce opaque signed data (application/pkcs7-mime) instead of multipart/signed.
    #[arg(long)]
    pub opaque: bool,
    /// Encrypt to this recipient certificate (PEM) after signing; repeat for several.
    #[arg(long, value_name = "CERT")]
    pub encrypt_to: Vec<PathBuf>,
    /// Digest algorithm of the signature.
    #[arg(long, value_enum, default_value_t = DigestArg::Sha256)]
    pub digest: DigestArg,
    /// Content-encryption algorithm (with --encrypt-to).
    #[arg(long, value_enum, default_value_t = CipherArg::Aes256Gcm)]
    pub cipher: CipherArg,
    /// From: `addr` or `'Display Name <addr>'` (non-ASCII names are RFC 2047 encoded).
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// To: `addr` or `'Display Name <addr>'`; repeat for several.
    #[arg(long, value_name = "MAILBOX")]
    pub to: Vec<String>,
    /// Subject (default: the input message's, else `Calendar METHOD`).
    #[arg(long, value_name = "TEXT")]
    pub subject: Option<String>,
    /// Signing time (RFC 3339), also the time the identity must be valid at; default now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
    /// Policy store: a SQLite file or a postgresql:// URL [env: IMIPSEC_STORE].
    #[arg(long, value_name = "PATH", env = "IMIPSEC_STORE", hide_env = true)]
    pub store: Option<PathBuf>,
    /// Configuration file (TOML) [env: IMIPSEC_CONFIG].
    #[arg(long, value_name = "FILE", env = "IMIPSEC_CONFIG", hide_env = true)]
    pub config: Option<PathBuf>,
}

/// Arguments of `imipsec audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Mailboxes to audit: mbox files (gzipped too), Maildir and MH folders, folders of .eml
    /// files; - for an mbox on standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Trust anchors, store, time and configuration.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Record accepted messages in the store's event state (default: read-only); the
    /// messages are then evaluated one at a time in mailbox order.
    #[arg(long)]
    pub record: bool,
    /// Write one JSON object per message (JSON Lines) to FILE.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Write one CSV row per message to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write a self-contained HTML report (table, filters, chart) to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Worker threads (at least 1); default the number of available cores (1 with --record).
    #[arg(long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// Never show the progress bar (it is shown only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `imipsec store`.
#[derive(Debug, Clone, Args)]
pub struct StoreCommandArgs {
    /// The store action.
    #[command(subcommand)]
    pub command: StoreCommand,
}

/// `imipsec store` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum StoreCommand {
    /// Create an empty policy store, or migrate an existing one to the current schema.
    #[command(after_help = STORE_HELP)]
    Init(StoreArgs),
}

/// Arguments of `imipsec delegate`.
#[derive(Debug, Clone, Args)]
pub struct DelegateArgs {
    /// The delegation action.
    #[command(subcommand)]
    pub command: DelegateCommand,
}

/// Where the delegations live: shared by every `delegate` subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Policy store: a SQLite file or a postgresql:// URL [env: IMIPSEC_STORE].
    #[arg(long, value_name = "PATH", env = "IMIPSEC_STORE", hide_env = true)]
    pub store: Option<PathBuf>,
    /// Configuration file (TOML) naming the store [env: IMIPSEC_CONFIG].
    #[arg(long, value_name = "FILE", env = "IMIPSEC_CONFIG", hide_env = true)]
    pub config: Option<PathBuf>,
}

/// `imipsec delegate` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DelegateCommand {
    /// Allow DELEGATE to act for PRINCIPAL (RFC 5545 SENT-BY).
    #[command(after_help = GRANT_HELP)]
    Grant(GrantArgs),
    /// Revoke a grant by id, or every grant from PRINCIPAL to DELEGATE.
    #[command(after_help = REVOKE_HELP)]
    Revoke(RevokeArgs),
    /// List grants in force (or all with --all).
    #[command(after_help = LIST_HELP)]
    List(ListArgs),
    /// Show every grant and revocation of a principal, oldest first.
    #[command(after_help = HISTORY_HELP)]
    History(HistoryArgs),
    /// Import grants from a JSON file written by `export`.
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Export every grant as JSON (to FILE or standard output).
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
}

/// Arguments of `imipsec delegate grant`.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The address acted for (the ORGANIZER or ATTENDEE).
    #[arg(long, value_name = "ADDR")]
    pub principal: String,
    /// The address allowed to act (the SENT-BY signer).
    #[arg(long = "delegate", value_name = "ADDR")]
    pub delegate: String,
    /// iTIP methods allowed, comma-separated (REQUEST,CANCEL,...); `all` for every method;
    /// `organizer` or `attendee` for the methods of that role.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub methods: Vec<String>,
    /// Start of validity (RFC 3339); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub from: Option<OffsetDateTime>,
    /// End of validity (RFC 3339); default unlimited.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub until: Option<OffsetDateTime>,
    /// Free-text note kept with the grant.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Who records the grant; default the user name.
    #[arg(long, value_name = "ADDR")]
    pub by: Option<String>,
}

/// Arguments of `imipsec delegate revoke`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "principal"]))]
pub struct RevokeArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The grant id (from `list`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["principal", "delegate"])]
    pub id: Option<i64>,
    /// Revoke every grant of this principal to --delegate.
    #[arg(long, value_name = "ADDR", requires = "delegate")]
    pub principal: Option<String>,
    /// The delegate whose grants from --principal are revoked.
    #[arg(long = "delegate", value_name = "ADDR", requires = "principal")]
    pub delegate: Option<String>,
    /// Reason kept with the revocation.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Who records the revocation; default the user name.
    #[arg(long, value_name = "ADDR")]
    pub by: Option<String>,
    /// Time of the revocation (RFC 3339); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
}

/// Arguments of `imipsec delegate list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only grants of this principal.
    #[arg(long, value_name = "ADDR")]
    pub principal: Option<String>,
    /// Only grants to this delegate.
    #[arg(long = "delegate", value_name = "ADDR")]
    pub delegate: Option<String>,
    /// Grants in force at this time (RFC 3339); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
    /// Include revoked, expired and not yet valid grants.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `imipsec delegate history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The principal whose history is shown.
    #[arg(long, value_name = "ADDR")]
    pub principal: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `imipsec delegate import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// JSON file written by `imipsec delegate export`.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Who records the imported grants; default the user name.
    #[arg(long, value_name = "ADDR")]
    pub by: Option<String>,
    /// Time of the import (RFC 3339); default now.
    #[arg(long, value_name = "TIME", value_parser = parse_rfc3339)]
    pub at: Option<OffsetDateTime>,
}

/// Arguments of `imipsec delegate export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output file; standard output if absent or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

const GATE_HELP: &str = "\
Examples:
  imipsec gate --config /etc/imipsec.toml
  imipsec gate --config imipsec.toml --milter 127.0.0.1:8891
  imipsec gate --config imipsec.toml --lmtp 127.0.0.1:2424 --lmtp-backend 127.0.0.1:24
  imipsec gate --config /etc/imipsec.toml --check-config

The [gate] table of the configuration sets the authserv-id (required), the action on
reject (reject, quarantine, defuse, or monitor to roll out: deliver everything tagged and
log what would have been rejected), the action on mail the gate cannot decrypt
(on_undecryptable: pass, reject, quarantine), limits and the metrics address. Milter and
LMTP listen on loopback only unless allow_remote_clients = true; see crates/gate/README.md.
Runs until SIGTERM, then finishes the transactions in flight. SIGHUP reloads the
configuration file, anchors and CRLs without dropping connections: every message evaluated
after it uses the new trust, connections accepted after it the new [gate] settings; a
reload that fails (or changes a listen address, metrics_listen or limits.connections, which
need a restart) keeps the running state and logs why. Each CRL's nextUpdate is logged at
start and reload (a warning when past) and exported as imipsec_gate_crl_next_update_seconds.

Exit status:
  0  stopped by SIGTERM/SIGINT after draining; --check-config: the configuration is usable
  2  could not start: configuration, trust anchors, store or listener error";

/// Arguments of `imipsec gate`.
#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Configuration file (TOML) with the trust, store and gate tables [env: IMIPSEC_CONFIG].
    #[arg(long, value_name = "FILE", env = "IMIPSEC_CONFIG", hide_env = true)]
    pub config: PathBuf,
    /// Milter listen address; overrides [gate.milter] listen.
    #[arg(long, value_name = "ADDR")]
    pub milter: Option<std::net::SocketAddr>,
    /// LMTP proxy listen address; overrides [gate.lmtp] listen.
    #[arg(long, value_name = "ADDR")]
    pub lmtp: Option<std::net::SocketAddr>,
    /// The LMTP server behind the proxy (Dovecot, Cyrus); overrides [gate.lmtp] backend.
    #[arg(long, value_name = "ADDR")]
    pub lmtp_backend: Option<std::net::SocketAddr>,
    /// Log JSON lines instead of text (audit lines have target imipsec_gate::audit).
    #[arg(long)]
    pub log_json: bool,
    /// Check the configuration (it parses; authserv_id is set; listeners are loopback unless
    /// allow_remote_clients; anchors, CRLs, identities and the store open) and exit: 0 with
    /// one line on stdout, 2 with the error on stderr. Binds no socket, creates no file.
    #[arg(long)]
    pub check_config: bool,
    /// Reject the iCalendar deviations of the interoperability profile instead of
    /// accepting them with a warning; overrides `[policy] strict_icalendar`.
    #[arg(long)]
    pub strict_icalendar: bool,
    /// Fetch revocation status over http (OCSP from AIA, then CRL distribution points);
    /// overrides `[trust] fetch_revocation`.
    #[arg(long)]
    pub fetch_revocation: bool,
    /// Folder caching fetched revocation answers until their nextUpdate; overrides `[trust]
    /// revocation_cache` (default: `revocation-cache` beside the `[store] path`).
    #[arg(long, value_name = "DIR")]
    pub revocation_cache: Option<PathBuf>,
}

/// Arguments of `imipsec generate`.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: GenerateCommand,
}

/// What `imipsec generate` produces.
#[derive(Debug, Clone, Subcommand)]
pub enum GenerateCommand {
    /// Shell completion script on standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The man pages (roff): the top-level page on standard output, or every page into DIR.
    Man {
        /// Write imipsec.1 and one page per command into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Parses `--jobs`: a whole number of at least 1 (std's own message for 0, "number would be
/// zero for non-zero type", says nothing to a user).
pub fn parse_jobs(text: &str) -> Result<std::num::NonZeroUsize, String> {
    text.parse::<usize>()
        .ok()
        .and_then(std::num::NonZeroUsize::new)
        .ok_or_else(|| "not a whole number of at least 1".to_owned())
}

/// Parses a revocation mode: `off`, `if-available` or `require`.
pub fn parse_revocation(text: &str) -> Result<RevocationMode, String> {
    text.parse::<RevocationMode>()
        .map_err(|error| error.to_string())
}

/// Parses an RFC 3339 timestamp (`2026-06-01T00:00:00Z`).
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|error| format!("not an RFC 3339 time like 2026-06-01T00:00:00Z: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn verify_flags_parse() {
        let cli = Cli::try_parse_from([
            "imipsec",
            "verify",
            "m.eml",
            "--trust",
            "a.pem",
            "--trust",
            "b.pem",
            "--at",
            "2026-06-01T00:00:00Z",
            "--json",
        ])
        .unwrap();
        let Command::Verify(args) = cli.command else {
            panic!("not verify")
        };
        assert_eq!(args.trust.trust.len(), 2);
        assert!(args.json);
        assert_eq!(args.trust.at.unwrap().year(), 2026);
    }

    #[test]
    fn bad_time_is_rejected() {
        assert!(Cli::try_parse_from(["imipsec", "verify", "--at", "yesterday"]).is_err());
    }

    #[test]
    fn grant_methods_split_on_commas() {
        let cli = Cli::try_parse_from([
            "imipsec",
            "delegate",
            "grant",
            "--principal",
            "a@x",
            "--delegate",
            "b@x",
            "--methods",
            "REQUEST,CANCEL",
        ])
        .unwrap();
        let Command::Delegate(DelegateArgs {
            command: DelegateCommand::Grant(grant),
        }) = cli.command
        else {
            panic!("not grant")
        };
        assert_eq!(grant.methods, ["REQUEST", "CANCEL"]);
    }

    // Issue #14: `--jobs 0` said "number would be zero for non-zero type".
    #[test]
    fn jobs_zero_is_explained_not_leaked() {
        let error = Cli::try_parse_from(["imipsec", "audit", "x", "--jobs", "0"]).unwrap_err();
        let text = error.to_string();
        assert!(!text.contains("non-zero type"), "{text}");
        assert!(text.contains("at least 1"), "{text}");
    }

    // Issue #14 point 12: `generate` was missing from --help.
    #[test]
    fn help_lists_every_command() {
        let help = Cli::command().render_help().to_string();
        for command in [
            "verify", "sign", "audit", "delegate", "store", "gate", "generate",
        ] {
            assert!(help.contains(&format!("  {command} ")), "{command}: {help}");
        }
    }

    #[test]
    fn sign_without_identity_is_a_usage_error() {
        let error = Cli::try_parse_from(["imipsec", "sign", "x.ics"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn revoke_needs_id_or_pair() {
        assert!(Cli::try_parse_from(["imipsec", "delegate", "revoke"]).is_err());
        assert!(
            Cli::try_parse_from(["imipsec", "delegate", "revoke", "--principal", "a@x"]).is_err()
        );
        assert!(Cli::try_parse_from(["imipsec", "delegate", "revoke", "--id", "3"]).is_ok());
    }
}
