//! [`imipsec_smime::RevocationSource`] for [`Fetcher`].

use imipsec_smime::{Fetched, RevocationSource};
use time::OffsetDateTime;

use crate::Fetcher;
use crate::cache::Question;

impl RevocationSource for Fetcher {
    fn ocsp(&self, url: &str, request_der: &[u8], at: OffsetDateTime) -> Fetched {
        match self.answer(
            Question::Ocsp {
                url,
                request: request_der,
            },
            at,
        ) {
            Ok(answer) => Fetched::Answer(answer),
            Err(reason) => Fetched::Unavailable(reason),
        }
    }

    fn crl(&self, url: &str, at: OffsetDateTime) -> Fetched {
        match self.answer(Question::Crl { url }, at) {
            Ok(answer) => Fetched::Answer(answer),
            Err(reason) => Fetched::Unavailable(reason),
        }
    }

    fn confirmed(
        &self,
        url: &str,
        request_der: Option<&[u8]>,
        answer: &[u8],
        next_update: OffsetDateTime,
    ) {
        self.forget_failure(url);
        let question = match request_der {
            Some(request) => Question::Ocsp { url, request },
            None => Question::Crl { url },
        };
        self.store(question, answer, next_update);
    }
}
