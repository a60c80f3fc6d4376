//! The verifier's hot path: decode + tally of one event, as the consumer does per record
//! (`Tally::record(Some(&bytes), Some(run), partition, now)`), and the producer's encode for comparison.
//!
//! Run: `cargo bench --bench verifier` (criterion prints events/s as "thrpt"; target for
//! `tally_record`: >= 2 M events/s on one core). bench/run runs it and copies the figures into
//! BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_test_app::event::{decode, derived_id, run_key, EventEncoder};
use kafka_test_app::Tally;

const BATCH: u64 = 100_000;
const PARTITIONS: u64 = 5;
const BASE: f64 = 1_763_000_000.0;
/// The `kta-run` header value every event of a run carries (a uuid4 hex).
const RUN: &[u8] = b"5f0c6d3e9a8b4c1d8e7f6a5b4c3d2e1f";

/// `BATCH` events from `origins` origins, interleaved, each origin's `n` counting from 0, with
/// the real encoder (the `_id`s a producer run derives, timestamps 10 µs apart).
fn events(origins: u64) -> Vec<(Vec<u8>, i32)> {
    let mut encoders: Vec<EventEncoder> = (0..origins)
        .map(|o| EventEncoder::new(&format!("kafka-test-app-{o} (10.1.29.{})", 100 + o)))
        .collect();
    (0..BATCH)
        .map(|i| {
            let (o, n) = (i % origins, i / origins);
            let bytes = encoders[o as usize]
                .encode(
                    BASE + i as f64 * 1e-5,
                    derived_id(run_key(std::str::from_utf8(RUN).unwrap()), n),
                    n,
                )
                .to_vec();
            (bytes, (n % PARTITIONS) as i32)
        })
        .collect()
}

fn verifier(c: &mut Criterion) {
    let mut group = c.benchmark_group("verifier");
    group.throughput(Throughput::Elements(BATCH));
    let now = BASE + 1.0;
    for origins in [1u64, 100] {
        let input = events(origins);
        // A fresh tally per batch of 100 000 events: every event is new (the Counted path), as
        // in a real run; creating the tally is not timed.
        group.bench_function(format!("tally_record/{origins}_origins"), |b| {
            b.iter_batched_ref(
                Tally::new,
                |tally| {
                    for (bytes, partition) in &input {
                        black_box(tally.record(Some(bytes), Some(RUN), *partition, now));
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    let input = events(1);
    group.bench_function("decode", |b| {
        b.iter(|| {
            for (bytes, _) in &input {
                black_box(decode(Some(black_box(bytes))).is_ok());
            }
        })
    });
    let mut encoder = EventEncoder::new("kafka-test-app-0 (10.1.29.185)");
    let ids: Vec<uuid::Uuid> = (0..BATCH).map(|_| uuid::Uuid::new_v4()).collect();
    group.bench_function("encode", |b| {
        b.iter(|| {
            for (n, id) in ids.iter().enumerate() {
                black_box(encoder.encode(BASE + n as f64 * 1e-5, *id, n as u64).len());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, verifier);
criterion_main!(benches);
