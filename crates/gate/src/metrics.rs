//! Counters and a tiny Prometheus text-format responder (loopback only).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the gate did with a message (the `action` label of the audit line and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not calendar mail: passed untouched.
    Pass,
    /// Verified calendar mail: passed with an `Authentication-Results` header.
    Accept,
    /// Refused with `550 5.7.1`.
    Reject,
    /// Held (milter quarantine) or delivered to the quarantine mailbox.
    Quarantine,
    /// Delivered with the calendar parts renamed.
    Defuse,
    /// Refused temporarily (`451`): engine error, timeout, backend down.
    Tempfail,
    /// Larger than the inspection limit.
    Oversize,
    /// Rejected, but delivered tagged `x-imip=fail` (`on_reject = "monitor"`).
    MonitorWouldReject,
    /// Not decrypted (no key), delivered tagged `x-imip=none (not decrypted)`.
    PassNotDecrypted,
}

impl Action {
    const ALL: [Action; 9] = [
        Self::Pass,
        Self::Accept,
        Self::Reject,
        Self::Quarantine,
        Self::Defuse,
        Self::Tempfail,
        Self::Oversize,
        Self::MonitorWouldReject,
        Self::PassNotDecrypted,
    ];

    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::Quarantine => "quarantine",
            Self::Defuse => "defuse",
            Self::Tempfail => "tempfail",
            Self::Oversize => "oversize",
            Self::MonitorWouldReject => "monitor-would-reject",
            Self::PassNotDecrypted => "pass-not-decrypted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Upper bounds (seconds) of the decision latency histogram buckets.
const BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0];

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    connections: AtomicU64,
    refused_connections: AtomicU64,
    protocol_errors: AtomicU64,
    actions: [AtomicU64; 9],
    decide_micros_sum: AtomicU64,
    decide_count: AtomicU64,
    decide_buckets: [AtomicU64; 8],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// (source, issuer, nextUpdate as Unix seconds) of each CRL in force.
    crls: Mutex<Vec<(String, String, Option<i64>)>>,
}

impl Metrics {
    pub(crate) fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn protocol_error(&self) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn action(&self, action: Action, decide_time: Option<Duration>) {
        if let Some(counter) = self.actions.get(action.index()) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(elapsed) = decide_time {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            self.decide_micros_sum.fetch_add(micros, Ordering::Relaxed);
            self.decide_count.fetch_add(1, Ordering::Relaxed);
            let seconds = elapsed.as_secs_f64();
            for (bound, bucket) in BUCKETS.iter().zip(&self.decide_buckets) {
                if seconds <= *bound {
                    bucket.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub(crate) fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_crls(&self, crls: &[crate::reload::CrlStatus]) {
        let gauges = crls
            .iter()
            .map(|crl| {
                (
                    crl.source.clone(),
                    crl.issuer.clone(),
                    crl.next_update.map(time::OffsetDateTime::unix_timestamp),
                )
            })
            .collect();
        *self.crls.lock().unwrap_or_else(PoisonError::into_inner) = gauges;
    }

    /// How many reloads were put in force (`true`) or refused (`false`).
    pub fn reloads(&self, ok: bool) -> u64 {
        if ok {
            self.reloads_ok.load(Ordering::Relaxed)
        } else {
            self.reloads_failed.load(Ordering::Relaxed)
        }
    }

    /// How many messages ended with `action`.
    pub fn count(&self, action: Action) -> u64 {
        self.actions
            .get(action.index())
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE imipsec_gate_connections_total counter");
        let _ = writeln!(
            out,
            "imipsec_gate_connections_total {}",
            load(&self.connections)
        );
        let _ = writeln!(out, "# TYPE imipsec_gate_refused_connections_total counter");
        let _ = writeln!(
            out,
            "imipsec_gate_refused_connections_total {}",
            load(&self.refused_connections)
        );
        let _ = writeln!(out, "# TYPE imipsec_gate_protocol_errors_total counter");
        let _ = writeln!(
            out,
            "imipsec_gate_protocol_errors_total {}",
            load(&self.protocol_errors)
        );
        let _ = writeln!(out, "# TYPE imipsec_gate_messages_total counter");
        for action in Action::ALL {
            let _ = writeln!(
                out,
                "imipsec_gate_messages_total{{action=\"{}\"}} {}",
                action.as_str(),
                self.count(action)
            );
        }
        let _ = writeln!(out, "# TYPE imipsec_gate_decide_seconds histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.decide_buckets) {
            let _ = writeln!(
                out,
                "imipsec_gate_decide_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.decide_count);
        let _ = writeln!(
            out,
            "imipsec_gate_decide_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "imipsec_gate_decide_seconds_sum {}",
            load(&self.decide_micros_sum) as f64 / 1e6
        );
        let _ = writeln!(out, "imipsec_gate_decide_seconds_count {count}");
        let _ = writeln!(out, "# TYPE imipsec_gate_reloads_total counter");
        let _ = writeln!(
            out,
            "imipsec_gate_reloads_total{{result=\"ok\"}} {}",
            load(&self.reloads_ok)
        );
        let _ = writeln!(
            out,
            "imipsec_gate_reloads_total{{result=\"failed\"}} {}",
            load(&self.reloads_failed)
        );
        // The nextUpdate of each CRL in force, as Unix seconds: alert on
        // `imipsec_gate_crl_next_update_seconds - time() < 86400`. A CRL without nextUpdate
        // has no sample.
        let _ = writeln!(out, "# TYPE imipsec_gate_crl_next_update_seconds gauge");
        for (source, issuer, next_update) in self
            .crls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            if let Some(next_update) = next_update {
                let _ = writeln!(
                    out,
                    "imipsec_gate_crl_next_update_seconds{{crl=\"{}\",issuer=\"{}\"}} {next_update}",
                    label(source),
                    label(issuer)
                );
            }
        }
        out
    }
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serve `GET /metrics` (any path, in fact) on `listener` until the task is dropped.
/// Requests are read up to 4 KiB with a 5 s timeout; the responder never parses more.
pub(crate) async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _peer)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let read =
                tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                return;
            }
            let body = metrics.render();
            let response = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CRL issuer name is text from a file: it cannot break out of its label.
    #[test]
    fn crl_labels_are_escaped() {
        let metrics = Metrics::default();
        metrics.set_crls(&[crate::reload::CrlStatus {
            source: "/etc/a\"b.crl".to_owned(),
            issuer: "CN=x\n} 1\nfake_metric 2".to_owned(),
            next_update: Some(time::macros::datetime!(2026-06-02 00:00 UTC)),
        }]);
        let text = metrics.render();
        assert!(
            text.contains(
                "imipsec_gate_crl_next_update_seconds{crl=\"/etc/a\\\"b.crl\",issuer=\"CN=x\\n} 1\\nfake_metric 2\"} 1780358400"
            ),
            "{text}"
        );
        assert!(!text.lines().any(|line| line.starts_with("fake_metric")));
    }
}
