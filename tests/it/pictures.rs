//! Pictures of a run, from a real run: the series and histograms the producers put in their run
//! reports reach `verify`, whose fleet-wide percentiles come from the merged histograms, and
//! `verify --html` writes the page (the browser tests in tests/browser look at it in a browser).

use crate::common::{app, run, Broker};
use crate::fleet::{produce, verify};

#[test]
fn verify_merges_every_runs_histogram_and_series_and_writes_the_page() {
    let broker = Broker::start();
    let topic = "pictures-fleet";
    let origins = [
        ("a (10.0.0.1)", 300u64),
        ("b (10.0.0.2)", 500),
        ("<script>alert(1)</script> (10.0.0.3)", 700),
    ];
    let produced: Vec<serde_json::Value> = origins
        .iter()
        .map(|&(origin, n)| produce(broker, topic, origin, n))
        .collect();
    let dir = std::env::temp_dir().join(format!("kta-it-pictures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let html = dir.join("report.html");
    let report = verify(broker, topic, &["--html", html.to_str().unwrap()], 0);
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["consumed"], 1500);

    // The fleet's percentiles come from the runs' histograms merged: the fleet's max is the
    // largest run's max, its median lies between the runs' medians.
    let ack = |r: &serde_json::Value, q: &str| r["ack_latency_ms"][q].as_f64().unwrap();
    let max = produced.iter().map(|p| ack(p, "max")).fold(0.0, f64::max);
    assert_eq!(ack(&report, "max"), max);
    let p50s: Vec<f64> = produced.iter().map(|p| ack(p, "p50")).collect();
    let p50 = ack(&report, "p50");
    assert!(
        p50s.iter().any(|&p| p <= p50) && p50s.iter().any(|&p| p >= p50),
        "fleet p50 {p50} outside the runs' {p50s:?}"
    );

    // Every run's series adds up to what it reported: sent and acknowledged per second.
    for (&(origin, n), producer) in origins.iter().zip(&produced) {
        let runs = report["origins"][origin]["runs"].as_object().unwrap();
        let run = &runs[producer["run"].as_str().unwrap()];
        let total = |series: &str| -> u64 {
            run["series"][series]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .sum()
        };
        assert_eq!(
            (total("sent"), total("acked"), total("failed")),
            (n, n, 0),
            "{origin}"
        );
        assert_eq!(
            producer["series"], run["series"],
            "{origin}: the final report's series"
        );
    }

    // The page: the verdict, the numbers, the origin escaped.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("data-verdict=\"pass\""));
    assert!(page.contains("data-key=\"consumed\" data-value=\"1500\""));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; (10.0.0.3)"));
    assert!(!page.contains("<script>alert"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_html_file_that_cannot_be_written_is_refused_before_the_run() {
    let output = run(
        app()
            .args([
                "verify",
                "--topic",
                "t",
                "--html",
                "/nonexistent-dir/report.html",
            ])
            .env("KTA_BOOTSTRAP_SERVERS", "127.0.0.1:1"),
        2,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "kafka-test-app: error: cannot write the HTML report to /nonexistent-dir/report.html \
         (--html): No such file or directory (os error 2)"
    );
}
