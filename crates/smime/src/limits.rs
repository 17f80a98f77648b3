//! Named limits for untrusted input (every one with its own [`LimitKind`]).

/// Bounds on the work one message may cause. `Default` is meant for mail in the wild: generous
/// for real iMIP messages, small enough that no input can exhaust memory or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the received message in bytes (and of any decrypted content).
    pub message_bytes: usize,
    /// Maximum nesting depth of MIME entities, counted across decrypted and opaque-signed
    /// content (the root entity has depth 1).
    pub mime_depth: usize,
    /// Maximum number of MIME entities in the whole message, inner content included.
    pub parts: usize,
    /// Maximum number of certificates (and CRLs) in one SignedData.
    pub certificates: usize,
    /// Maximum number of SignerInfos in one SignedData.
    pub signer_infos: usize,
    /// Maximum size of one CMS structure in bytes (after transfer decoding).
    pub cms_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes: 32 * 1024 * 1024,
            mime_depth: 16,
            parts: 256,
            certificates: 32,
            signer_infos: 8,
            cms_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Which limit of [`Limits`] was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::message_bytes`].
    #[error("message bytes")]
    MessageBytes,
    /// [`Limits::mime_depth`].
    #[error("MIME depth")]
    MimeDepth,
    /// [`Limits::parts`].
    #[error("MIME parts")]
    Parts,
    /// [`Limits::certificates`].
    #[error("certificates per SignedData")]
    Certificates,
    /// [`Limits::signer_infos`].
    #[error("signer infos per SignedData")]
    SignerInfos,
    /// [`Limits::cms_bytes`].
    #[error("CMS bytes")]
    CmsBytes,
}
