//! The gate driven by the TEST engine (`X-Test-Verdict` header), for the end-to-end
//! script's protocol checks without the real pipeline. Not for production.
//!
//! Usage: `test-engine-gate CONFIG.json` (a `GateConfig` as JSON).

#![allow(clippy::expect_used)]

#[path = "../tests/support/test_engine.rs"]
mod test_engine;

use std::sync::Arc;

use imipsec_gate::{Gate, GateConfig};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .init();
    let path = std::env::args()
        .nth(1)
        .expect("usage: test-engine-gate CONFIG.json");
    let text = std::fs::read_to_string(&path).expect("config file readable");
    let config: GateConfig = serde_json::from_str(&text).expect("config is a GateConfig");
    let engine = Arc::new(if config.danger_no_event_state {
        test_engine::HeaderDrivenTestEngine::without_event_state()
    } else {
        test_engine::HeaderDrivenTestEngine::default()
    });
    let gate = Gate::new(config, engine, Arc::new(time::OffsetDateTime::now_utc));
    let bound = gate.bind().await.expect("listeners bind");
    bound.serve(imipsec_gate::shutdown_signal()).await;
}
