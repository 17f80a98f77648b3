//! The `audit --html` report renders in a real browser: headless Chromium loads the report of
//! the bundled sample mailbox under its own Content-Security-Policy, its DOM has the summary
//! first, every message row and the SVG chart bars, the filter script ran (it is allowed only
//! by its hash), and the screenshot shows the chart's colours. Needs Debian's `chromium` package; run by `.ci/run`
//! with `cargo test -- --ignored`. Fails with a clear message when chromium is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
];

/// Chart colours the sample mailbox must show (report/html.rs): accept, and the first
/// reason colours in legend order.
const EXPECTED_COLOURS: [[u8; 3]; 3] = [[0x2e, 0x7d, 0x32], [0xc6, 0x28, 0x28], [0xef, 0x6c, 0x00]];

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("which").arg(name).output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
        }
    }
    panic!("chromium is not installed: `apt-get install -y chromium` (Debian) to run this test");
}

fn write_report(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let html = dir.join("report.html");
    let status = Command::new(env!("CARGO_BIN_EXE_imipsec"))
        .arg("audit")
        .arg(root.join("testdata/sample-mailbox"))
        .arg("--trust")
        .arg(root.join("certs/root.cert.pem"))
        .arg("--crl")
        .arg(root.join("certs/intermediate.crl.pem"))
        .args(["--at", "2026-06-01T00:00:00Z", "--html"])
        .arg(&html)
        .env_remove("IMIPSEC_STORE")
        .env_remove("IMIPSEC_CONFIG")
        .status()
        .unwrap();
    assert!(status.success());
    html
}

fn run_chromium(profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    Command::new(chromium())
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs chromium; run by .ci/run"]
fn html_report_renders_table_and_chart_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let html = write_report(dir.path());
    let url = format!("file://{}", html.display());

    // The rendered DOM (after the inline script ran): every row, every bar.
    let dom = run_chromium(
        &dir.path().join("profile-dom"),
        &["--dump-dom".to_string()],
        &url,
    );
    assert!(dom.status.success(), "{dom:?}");
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert_eq!(dom.matches("<tr class=\"").count(), 36, "message rows");
    assert!(
        dom.matches("<rect class=\"bar\"").count() >= 6,
        "chart bars"
    );
    assert!(dom.contains("<svg id=\"reason-chart\""));
    // The summary and the run's facts come first.
    let summary = dom.find("id=\"summary\"").unwrap();
    assert!(summary < dom.find("id=\"message-table\"").unwrap());
    assert!(dom.contains("2026-06-01T00:00:00Z") && dom.contains("intermediate.crl.pem"));
    assert!(dom.contains("Content-Security-Policy"));
    // The filter script ran under the Content-Security-Policy (the report says "all" until
    // the script, allowed by its SHA-256 hash, counts the visible rows).
    assert!(
        dom.contains("<span id=\"shown\">36</span>"),
        "filter script blocked or not run"
    );

    // The screenshot: decode it and find the chart's colours where the chart is drawn.
    let png_path = dir.path().join("report.png");
    let shot = run_chromium(
        &dir.path().join("profile-shot"),
        &[format!("--screenshot={}", png_path.display())],
        &url,
    );
    assert!(shot.status.success(), "{shot:?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (1200, 900));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let mut colours = HashSet::new();
    // The chart sits below the summary tables, within the first screen.
    for y in 0..info.height as usize {
        for x in 0..1000usize {
            let at = (y * info.width as usize + x) * channels;
            colours.insert([pixels[at], pixels[at + 1], pixels[at + 2]]);
        }
    }
    assert!(colours.len() > 8, "only {} colours", colours.len());
    for colour in EXPECTED_COLOURS {
        assert!(
            colours.contains(&colour),
            "chart colour {colour:02x?} not on screen"
        );
    }
}
