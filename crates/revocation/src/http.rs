//! Plain-HTTP transport: OCSP by POST (RFC 6960 Appendix A.1), CRLs by GET (RFC 5280
//! section 4.2.1.13), `http://` only, no redirects, every transfer bounded in time and size.

use std::time::Duration;

use crate::Limits;

/// Why a fetch gave no bytes. Every variant is "unavailable" to the S/MIME layer: nothing
/// fetched is ever trusted here, and no failure here can make a certificate pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL is not `http://host[:port]/path` (RFC 5280 section 8: revocation data is
    /// signed, so it is fetched over plain HTTP; `https`, `ldap`, `file` and every other
    /// scheme are refused rather than followed).
    #[error("refused URL {url:?}: only http:// URLs are fetched")]
    Scheme {
        /// The URL as given (truncated).
        url: String,
    },
    /// The URL is longer than [`Limits::url_bytes`] or holds characters a URL may not.
    #[error("refused URL: longer than {limit} bytes or not printable ASCII")]
    MalformedUrl {
        /// The limit.
        limit: usize,
    },
    /// Connecting, sending or receiving failed, or took longer than the limits allow.
    #[error("{url}: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// ureq's description.
        reason: String,
    },
    /// The server answered with a status other than 200, a redirect included: redirects are
    /// never followed (a redirect could lead to another scheme or an internal address).
    #[error("{url}: HTTP status {status} (only 200 is used; redirects are not followed)")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body is larger than the limit for its kind.
    #[error("{url}: answer larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The body is empty.
    #[error("{url}: empty answer")]
    Empty {
        /// The URL.
        url: String,
    },
}

/// Checks `url` before any I/O: `http://` (scheme case-insensitive), bounded, printable
/// ASCII with no spaces. The rest (host, port, path) is left to ureq's URI parser.
pub(crate) fn check_url(url: &str, limits: &Limits) -> Result<(), FetchError> {
    if url.len() > limits.url_bytes || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FetchError::MalformedUrl {
            limit: limits.url_bytes,
        });
    }
    let scheme_ok = url
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
    // `http://` followed by at least a host; userinfo (`user@host`) is refused: nothing we
    // fetch needs credentials, and `http://trusted@evil/` only serves to mislead a log reader.
    let authority = url
        .get(7..)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or("");
    if !scheme_ok || authority.is_empty() || authority.contains('@') {
        return Err(FetchError::Scheme {
            url: url.chars().take(200).collect(),
        });
    }
    Ok(())
}

/// A blocking HTTP/1.1 client set up for revocation fetching.
pub(crate) struct Http {
    agent: ureq::Agent,
    limits: Limits,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Http {
    pub(crate) fn new(limits: &Limits) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(limits.connect_timeout_secs)))
            .timeout_global(Some(Duration::from_secs(limits.transfer_timeout_secs)))
            // Redirects are not followed at all (the simplest way never to follow one to
            // another scheme or host): a 3xx is returned and refused as a status.
            .max_redirects(0)
            .http_status_as_error(false)
            .https_only(false)
            // No proxy from the environment: where revocation data comes from is decided
            // by the certificate and this configuration only.
            .proxy(None)
            .max_response_header_size(16 * 1024)
            .user_agent("imipsec-revocation")
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            limits: limits.clone(),
        }
    }

    /// POST an OCSP request (`application/ocsp-request`, RFC 6960 Appendix A.1).
    pub(crate) fn post_ocsp(&self, url: &str, request_der: &[u8]) -> Result<Vec<u8>, FetchError> {
        check_url(url, &self.limits)?;
        let response = self
            .agent
            .post(url)
            .header("Content-Type", "application/ocsp-request")
            .header("Accept", "application/ocsp-response")
            .send(request_der);
        self.body(url, response, self.limits.ocsp_response_bytes)
    }

    /// GET a CRL (DER or PEM as the server has it).
    pub(crate) fn get_crl(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        check_url(url, &self.limits)?;
        let response = self.agent.get(url).call();
        self.body(url, response, self.limits.crl_bytes)
    }

    fn body(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let transport = |error: ureq::Error| FetchError::Transport {
            url: url.to_owned(),
            reason: error.to_string(),
        };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|error| match error {
                ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge {
                    url: url.to_owned(),
                    limit,
                },
                other => transport(other),
            })?;
        if body.is_empty() {
            return Err(FetchError::Empty {
                url: url.to_owned(),
            });
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_pass_the_check() {
        let limits = Limits::default();
        for good in [
            "http://ocsp.example.org",
            "HTTP://ocsp.example.org/",
            "http://127.0.0.1:8080/ca.crl",
            "http://[::1]:80/x?y",
        ] {
            assert_eq!(check_url(good, &limits), Ok(()), "{good}");
        }
        for bad in [
            "https://ocsp.example.org/",
            "ldap://ldap.example.org/cn=CA?certificateRevocationList",
            "file:///etc/passwd",
            "ftp://x/",
            "http://",
            "http:///path",
            "http://user@evil.example/",
            "//example.org/",
            "",
        ] {
            assert!(
                matches!(check_url(bad, &limits), Err(FetchError::Scheme { .. })),
                "{bad}"
            );
        }
        for malformed in ["http://a b/", "http://a/\r\nHost: x", "http://é/"] {
            assert!(
                matches!(
                    check_url(malformed, &limits),
                    Err(FetchError::MalformedUrl { .. })
                ),
                "{malformed}"
            );
        }
        let long = format!("http://x/{}", "a".repeat(limits.url_bytes));
        assert!(matches!(
            check_url(&long, &limits),
            Err(FetchError::MalformedUrl { .. })
        ));
    }
}
