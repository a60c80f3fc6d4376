//! The event encoder against Python itself: for the same values, `json.dumps` of the original's
//! dict must give exactly our bytes.

use std::io::Write;
use std::process::{Command, Stdio};

use kafka_test_app::event::EventEncoder;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// One case: timestamp (as f64 bits), `_id`, origin, n.
type Case = (u64, String, String, u64);

/// What Python's `json.dumps` gives for each case, one line each.
fn python_dumps(cases: &[Case]) -> Vec<String> {
    let program = r#"
import json, struct, sys
for line in sys.stdin:
    bits, _id, origin, n = json.loads(line)
    timestamp = struct.unpack("<d", struct.pack("<Q", bits))[0]
    print(json.dumps({"timestamp": timestamp, "_id": _id, "origin": origin, "content": f"Message #{str(n)}"}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", program])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().unwrap();
    let input: String = cases
        .iter()
        .map(|case| serde_json::to_string(case).unwrap() + "\n")
        .collect();
    // Write from another thread: Python's output must be read while it is still reading input.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn ours(case: &Case) -> String {
    let (bits, id, origin, n) = case;
    let mut encoder = EventEncoder::new(origin);
    String::from_utf8(
        encoder
            .encode(f64::from_bits(*bits), id.parse().unwrap(), *n)
            .to_vec(),
    )
    .unwrap()
}

#[test]
fn matches_json_dumps_for_generated_events() {
    // Microsecond timestamps from 2001 to 2286 built as Python does (seconds + us / 1e6), plus
    // origins with quotes, backslashes, control characters and non-ASCII text.
    let timestamp = (1_000_000_000u64..9_999_999_999, 0u32..1_000_000)
        .prop_map(|(s, us)| (s as f64 + f64::from(us) / 1e6).to_bits());
    let id = "[0-9a-f]{32}";
    let origin = prop_oneof![
        "[a-z0-9-]{1,20} \\(10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\)",
        "\\PC{0,12}",
        "[\"\\\\\n\t\u{1}é€😀 ]{0,8}",
    ];
    let n = prop_oneof![0u64..1000, any::<u64>()];
    let strategy = (timestamp, id, origin, n);

    let mut runner = TestRunner::new(Config::with_cases(1));
    let cases: Vec<Case> = (0..2000)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let expected = python_dumps(&cases);
    assert_eq!(expected.len(), cases.len());
    for (case, python) in cases.iter().zip(&expected) {
        assert_eq!(&ours(case), python, "case {case:?}");
    }
}

#[test]
fn matches_json_dumps_for_the_tutorial_event() {
    let case: Case = (
        1707128717.277745f64.to_bits(),
        "339e0f352b4843bfa0d512b796019a92".into(),
        "kafka-test-app-0 (10.1.29.185)".into(),
        121,
    );
    assert_eq!(python_dumps(std::slice::from_ref(&case)), vec![ours(&case)]);
}
