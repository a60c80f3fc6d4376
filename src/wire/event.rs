//! The test event: encoding it exactly as the original Python client does, and decoding it.
//!
//! The original builds a dict and serialises it with `json.dumps`, so a record value is
//!
//! ```text
//! {"timestamp": 1707128717.277745, "_id": "339e0f352b4843bfa0d512b796019a92", "origin": "kafka-test-app-0 (10.1.29.185)", "content": "Message #121"}
//! ```
//!
//! with Python's separators (`", "` and `": "`), the keys in that order, the timestamp as Python's
//! shortest round-trip `repr` of `datetime.now().timestamp()` (whole seconds plus microseconds),
//! and strings escaped as `json.dumps` does by default (`ensure_ascii=True`). [`EventEncoder`]
//! writes that byte for byte into a reused buffer, without allocating per event.
//!
//! **Identity travels in the body.** The original's `_id` is a random UUID; ours is still 32
//! lowercase hex digits, but derived from the producer run and `n` ([`derived_id`]): the first 16
//! digits are the run's [`RunKey`], the last 16 a bijective mix of the key and `n`. So a reader
//! recognises an event of a run from its value alone ([`run_of`]), whatever happened to its
//! record headers (a mirror that drops them, a job that republishes values): a byte copy is a
//! duplicate of that run's event, not a new one. A random `_id` matches the mix with probability
//! 2^-64, so the original client's events and other writers' stay *foreign*.
//!
//! **Padding.** `produce --payload-bytes N` makes every value N bytes long with a fifth field
//! after the four, `"padding": "xxx…"` ([`EventEncoder::with_payload_bytes`]): still valid JSON,
//! the four fields first in the original's order, so `json.loads(value)["origin"]` (the Spark
//! job's UDF) and this tool's readers see the same event. Without it the bytes are the original's.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

const CONTENT_PREFIX: &str = "Message #";

/// What comes between the `content` string and the padding characters of a padded event.
const PADDING_OPEN: &[u8] = b", \"padding\": \"";

/// The character padding is made of: plain ASCII, nothing to escape.
const PADDING_CHAR: u8 = b'x';

/// The largest `--payload-bytes`: under Kafka's default `message.max.bytes` (1 048 588), with
/// room for the record's key, headers and framing.
pub const MAX_PAYLOAD_BYTES: usize = 1_000_000;

/// Latest timestamp accepted when decoding: the year 9999. Anything later is not a real event.
const MAX_TIMESTAMP: f64 = 253_402_300_800.0;

/// The timestamp Python's `datetime.now().timestamp()` gives for `time`: whole seconds plus
/// microseconds divided by 1e6, as one `f64`.
pub fn python_timestamp(time: SystemTime) -> f64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs() as f64 + f64::from(since_epoch.subsec_micros()) / 1e6
}

/// Appends `value` as Python's `json.dumps` writes a string (quotes included, `ensure_ascii`).
pub fn write_python_json_string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    for ch in value.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(ch as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
                }
            }
        }
    }
    out.push(b'"');
}

/// A producer run as it is named inside event bodies: the first 64 bits (16 hex digits) of its
/// run id. Run ids are random UUIDs, so keys of distinct runs collide with probability 2^-64.
pub type RunKey = u64;

/// The key of a run id as this tool writes them (32 hex digits: the first 16 are the key). Any
/// other string (a hand-made header, say) gets a stable hash of itself.
pub fn run_key(run_id: &str) -> RunKey {
    run_id
        .get(..16)
        .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| {
            use std::hash::{Hash, Hasher};
            let mut hasher = rustc_hash::FxHasher::default();
            run_id.hash(&mut hasher);
            hasher.finish()
        })
}

/// splitmix64's finaliser: a bijection on 64 bits that spreads every input bit.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `_id` of event `n` of the run `key`: the key, then `mix(key ^ n)`.
pub fn derived_id(key: RunKey, n: u64) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(key, mix(key ^ n))
}

/// The run an event belongs to, if its `_id` is the one [`derived_id`] gives for its `n`; `None`
/// for any other `_id` (the original client's random ones).
pub fn run_of(id: &str, n: u64) -> Option<RunKey> {
    let bytes: &[u8; 32] = id.as_bytes().try_into().ok()?;
    // 32 hex digits, either case, folded by hand: `u128::from_str_radix` costs several times as
    // much, and this runs for every event read.
    let value = bytes.iter().try_fold(0u128, |value, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(digit))
    })?;
    let (key, low) = ((value >> 64) as u64, value as u64);
    (low == mix(key ^ n)).then_some(key)
}

/// Writes events for one origin into a buffer it reuses, so producing allocates nothing per event.
#[derive(Clone)]
pub struct EventEncoder {
    /// `, "origin": "<escaped origin>", "content": "Message #`: fixed for a run.
    middle: Vec<u8>,
    /// The value length to pad to (`--payload-bytes`); 0: no padding, the original's bytes.
    payload_bytes: usize,
    buf: Vec<u8>,
    float: ryu::Buffer,
    int: itoa::Buffer,
}

impl EventEncoder {
    /// An encoder for events from `origin`.
    pub fn new(origin: &str) -> Self {
        let mut middle = b"\", \"origin\": ".to_vec();
        write_python_json_string(&mut middle, origin);
        middle.extend_from_slice(b", \"content\": \"");
        middle.extend_from_slice(CONTENT_PREFIX.as_bytes());
        EventEncoder {
            middle,
            payload_bytes: 0,
            buf: Vec::with_capacity(256),
            float: ryu::Buffer::new(),
            int: itoa::Buffer::new(),
        }
    }

    /// An encoder whose values are `bytes` long: the four fields, then a `"padding"` field of
    /// `x`s that fills the rest. An event whose four fields alone leave no room for it (a long
    /// origin, a small `bytes`) is sent unpadded, at its own length.
    pub fn with_payload_bytes(origin: &str, bytes: usize) -> Self {
        let mut encoder = EventEncoder::new(origin);
        encoder.payload_bytes = bytes;
        encoder.buf.reserve(bytes);
        encoder
    }

    /// Encodes event number `n` with the given timestamp (seconds since the epoch) and `_id`.
    pub fn encode(&mut self, timestamp: f64, id: uuid::Uuid, n: u64) -> &[u8] {
        let buf = &mut self.buf;
        buf.clear();
        buf.extend_from_slice(b"{\"timestamp\": ");
        // ryu prints the shortest round-trip digits, as Python's repr does, with a ".0" on whole
        // numbers; in the range of real timestamps both use plain (non-exponent) notation.
        buf.extend_from_slice(self.float.format_finite(timestamp).as_bytes());
        buf.extend_from_slice(b", \"_id\": \"");
        let mut hex = [0u8; uuid::fmt::Simple::LENGTH];
        buf.extend_from_slice(id.simple().encode_lower(&mut hex).as_bytes());
        buf.extend_from_slice(&self.middle);
        buf.extend_from_slice(self.int.format(n).as_bytes());
        buf.push(b'"');
        let padded = buf.len() + PADDING_OPEN.len() + 2;
        if self.payload_bytes >= padded {
            buf.extend_from_slice(PADDING_OPEN);
            // Within the capacity reserved for `payload_bytes`: no allocation.
            buf.resize(buf.len() + self.payload_bytes - padded, PADDING_CHAR);
            buf.push(b'"');
        }
        buf.push(b'}');
        buf
    }

    /// Encodes event number `n` of run `key`, stamped now, with its [`derived_id`].
    pub fn encode_now(&mut self, key: RunKey, n: u64) -> &[u8] {
        self.encode_at(SystemTime::now(), key, n)
    }

    /// Encodes event number `n` of run `key`, stamped `time`, with its [`derived_id`].
    pub fn encode_at(&mut self, time: SystemTime, key: RunKey, n: u64) -> &[u8] {
        self.encode(python_timestamp(time), derived_id(key, n), n)
    }
}

/// The `n` of an event this tool encoded, read from the end of the value (`…Message #<n>"}`,
/// or `…Message #<n>", "padding": "xx…"}` when padded) without parsing the rest: cheap enough
/// for every delivery report.
pub fn sequence_number(value: &[u8]) -> Option<u64> {
    let body = strip_padding(value.strip_suffix(b"}")?).strip_suffix(b"\"")?;
    let start = body.iter().rposition(|b| !b.is_ascii_digit())? + 1;
    if !body[..start].ends_with(CONTENT_PREFIX.as_bytes()) || start == body.len() {
        return None;
    }
    std::str::from_utf8(&body[start..]).ok()?.parse().ok()
}

/// `bytes` without a trailing padding field (`, "padding": "xx…"`), or as they are.
fn strip_padding(bytes: &[u8]) -> &[u8] {
    let Some(inner) = bytes.strip_suffix(b"\"") else {
        return bytes;
    };
    let start = inner
        .iter()
        .rposition(|&b| b != PADDING_CHAR)
        .map_or(0, |i| i + 1);
    inner[..start].strip_suffix(PADDING_OPEN).unwrap_or(bytes)
}

/// A decoded event, borrowing from the record value where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Seconds since the epoch when the producer built the event.
    pub timestamp: f64,
    /// The 32-hex-digit `_id`.
    pub id: &'a str,
    /// Who produced it: `"<hostname> (<ip>)"`.
    pub origin: Cow<'a, str>,
    /// The `n` of `Message #<n>`.
    pub n: u64,
}

/// Why a record is not a test event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Not JSON of the right shape (also: not UTF-8, missing keys, wrong types).
    #[error("not an event: {0}")]
    Json(String),
    /// `_id` is not 32 lowercase hex digits.
    #[error("_id is not 32 lowercase hex digits")]
    Id,
    /// `content` is not `Message #<n>`.
    #[error("content is not 'Message #<n>'")]
    Content,
    /// `timestamp` is negative or after the year 9999.
    #[error("timestamp out of range")]
    Timestamp,
    /// The record has no value.
    #[error("record has no value")]
    Empty,
}

#[derive(Deserialize)]
struct Wire<'a> {
    timestamp: f64,
    #[serde(rename = "_id")]
    id: &'a str,
    #[serde(borrow)]
    origin: Cow<'a, str>,
    content: &'a str,
}

/// Reads a value in exactly the shape [`EventEncoder`] (and the original client) writes, without
/// a JSON parser: `{"timestamp": <digits>.<digits>, "_id": "<32 bytes>", "origin": "<no escapes>",
/// "content": "<no escapes>"}`, or that with the padding field before the `}`. Anything else — other spacing or key order, escapes, exponents —
/// returns `None` and goes through serde_json, so both paths accept the same events.
fn decode_exact(value: &[u8]) -> Option<Wire<'_>> {
    let rest = value.strip_prefix(b"{\"timestamp\": ")?;
    let ts_end = rest.iter().position(|&b| b == b',')?;
    let (timestamp, rest) = rest.split_at(ts_end);
    let plain_decimal = timestamp
        .first()
        .is_some_and(|&b| b.is_ascii_digit() && b != b'0')
        && timestamp.iter().filter(|&&b| b == b'.').count() == 1
        && timestamp.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    if !plain_decimal {
        return None;
    }
    let rest = rest.strip_prefix(b", \"_id\": \"")?;
    let (id, rest) = rest.split_at_checked(32)?;
    let rest = rest.strip_prefix(b"\", \"origin\": \"")?;
    let (origin, rest) = split_plain_string(rest)?;
    let rest = rest.strip_prefix(b", \"content\": \"")?;
    let (content, rest) = split_plain_string(rest)?;
    if strip_padding(rest.strip_suffix(b"}")?) != b"" {
        return None;
    }
    Some(Wire {
        // Checked above: ASCII digits and one dot.
        timestamp: std::str::from_utf8(timestamp).ok()?.parse().ok()?,
        id: std::str::from_utf8(id).ok()?,
        origin: Cow::Borrowed(std::str::from_utf8(origin).ok()?),
        content: std::str::from_utf8(content).ok()?,
    })
}

/// Splits `…"rest` at the closing quote of a JSON string without escapes or control characters.
fn split_plain_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    (bytes[end] == b'"').then(|| (&bytes[..end], &bytes[end + 1..]))
}

/// Decodes a record value into an [`Event`], or says why it is not one.
pub fn decode(value: Option<&[u8]>) -> Result<Event<'_>, Malformed> {
    let value = value.ok_or(Malformed::Empty)?;
    let wire = match decode_exact(value) {
        Some(wire) => wire,
        None => serde_json::from_slice(value).map_err(|e| Malformed::Json(e.to_string()))?,
    };
    if !(0.0..MAX_TIMESTAMP).contains(&wire.timestamp) {
        return Err(Malformed::Timestamp);
    }
    if wire.id.len() != 32
        || !wire
            .id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Malformed::Id);
    }
    let digits = wire
        .content
        .strip_prefix(CONTENT_PREFIX)
        .ok_or(Malformed::Content)?;
    // Python prints integers without sign or leading zeros; accept only that form.
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(Malformed::Content);
    }
    let n = digits.parse().map_err(|_| Malformed::Content)?;
    Ok(Event {
        timestamp: wire.timestamp,
        id: wire.id,
        origin: wire.origin,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "339e0f352b4843bfa0d512b796019a92";

    #[test]
    fn encodes_the_tutorial_event_byte_for_byte() {
        let mut encoder = EventEncoder::new("kafka-test-app-0 (10.1.29.185)");
        let bytes = encoder.encode(1707128717.277745, ID.parse().unwrap(), 121);
        assert_eq!(
            std::str::from_utf8(bytes).unwrap(),
            r#"{"timestamp": 1707128717.277745, "_id": "339e0f352b4843bfa0d512b796019a92", "origin": "kafka-test-app-0 (10.1.29.185)", "content": "Message #121"}"#
        );
    }

    #[test]
    fn padded_events_are_exactly_n_bytes_with_the_four_fields_first() {
        let plain = EventEncoder::new("kafka-test-app-0 (10.1.29.185)")
            .encode(1707128717.277745, ID.parse().unwrap(), 121)
            .to_vec();
        let mut padded = EventEncoder::with_payload_bytes("kafka-test-app-0 (10.1.29.185)", 1024);
        for n in [0, 121, 99_999_999, u64::MAX] {
            let value = padded
                .encode(1707128717.277745, ID.parse().unwrap(), n)
                .to_vec();
            assert_eq!(value.len(), 1024);
            let json: serde_json::Value = serde_json::from_slice(&value).unwrap();
            assert_eq!(json["content"], format!("Message #{n}"));
            assert_eq!(json["padding"].as_str().unwrap().trim_matches('x'), "");
            assert_eq!(sequence_number(&value), Some(n));
            assert_eq!(decode(Some(&value)).unwrap().n, n);
            assert!(
                decode_exact(&value).is_some(),
                "the fast path takes padded events"
            );
        }
        // The four fields are the unpadded event's bytes, then the padding field.
        let value = padded
            .encode(1707128717.277745, ID.parse().unwrap(), 121)
            .to_vec();
        let head = &plain[..plain.len() - 1];
        assert!(value.starts_with(head));
        assert!(value[head.len()..].starts_with(b", \"padding\": \"xxx"));
        // Exactly the room for an empty padding field, and one byte less: unpadded.
        let room = plain.len() + PADDING_OPEN.len() + 1;
        let mut tight = EventEncoder::with_payload_bytes("kafka-test-app-0 (10.1.29.185)", room);
        let value = tight.encode(1707128717.277745, ID.parse().unwrap(), 121);
        assert!(
            value.ends_with(b"Message #121\", \"padding\": \"\"}"),
            "{value:?}"
        );
        assert_eq!(value.len(), room);
        let mut short =
            EventEncoder::with_payload_bytes("kafka-test-app-0 (10.1.29.185)", room - 1);
        assert_eq!(
            short.encode(1707128717.277745, ID.parse().unwrap(), 121),
            &plain[..]
        );
    }

    #[test]
    fn whole_second_timestamps_keep_python_trailing_zero() {
        let mut encoder = EventEncoder::new("o");
        let text = std::str::from_utf8(encoder.encode(1707128717.0, ID.parse().unwrap(), 0))
            .unwrap()
            .to_owned();
        assert!(
            text.starts_with(r#"{"timestamp": 1707128717.0, "#),
            "{text}"
        );
    }

    #[test]
    fn escapes_like_json_dumps() {
        let mut out = Vec::new();
        write_python_json_string(&mut out, "a\"b\\c\nd\u{1}é😀");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#""a\"b\\c\nd\u0001\u00e9\ud83d\ude00""#
        );
    }

    #[test]
    fn python_timestamp_is_seconds_plus_micros() {
        let t = UNIX_EPOCH + std::time::Duration::new(1707128717, 277_745_999);
        assert_eq!(python_timestamp(t), 1707128717.277745);
    }

    #[test]
    fn decode_round_trips_encode() {
        let mut encoder = EventEncoder::new("host (10.0.0.1)");
        let bytes = encoder
            .encode(1707128717.5, ID.parse().unwrap(), 42)
            .to_vec();
        let event = decode(Some(&bytes)).unwrap();
        assert_eq!(
            event,
            Event {
                timestamp: 1707128717.5,
                id: ID,
                origin: Cow::Borrowed("host (10.0.0.1)"),
                n: 42
            }
        );
    }

    #[test]
    fn decode_rejects_what_is_not_an_event() {
        let good = |ts: &str, id: &str, content: &str| {
            format!(
                r#"{{"timestamp": {ts}, "_id": "{id}", "origin": "o", "content": "{content}"}}"#
            )
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello".to_vec(), "json"),
            (vec![0xff, 0xfe, b'{'], "json"),
            (br#"{"timestamp": 1.0, "_id": "x"}"#.to_vec(), "json"),
            (br#"{"timestamp": "1.0", "_id": "339e0f352b4843bfa0d512b796019a92", "origin": "o", "content": "Message #1"}"#.to_vec(), "json"),
            (good("-5.0", ID, "Message #1").into_bytes(), "ts"),
            (good("1e300", ID, "Message #1").into_bytes(), "ts"),
            (good("1.0", "XYZ", "Message #1").into_bytes(), "id"),
            (good("1.0", "339E0F352B4843BFA0D512B796019A92", "Message #1").into_bytes(), "id"),
            (good("1.0", ID, "Hello").into_bytes(), "content"),
            (good("1.0", ID, "Message #-1").into_bytes(), "content"),
            (good("1.0", ID, "Message #007").into_bytes(), "content"),
            (good("1.0", ID, "Message #99999999999999999999999").into_bytes(), "content"),
        ];
        for (value, kind) in cases {
            let err = decode(Some(&value)).unwrap_err();
            let matches = match kind {
                "json" => matches!(err, Malformed::Json(_)),
                "ts" => err == Malformed::Timestamp,
                "id" => err == Malformed::Id,
                _ => err == Malformed::Content,
            };
            assert!(
                matches,
                "{:?} gave {err:?}",
                String::from_utf8_lossy(&value)
            );
        }
        assert_eq!(decode(None), Err(Malformed::Empty));
    }

    #[test]
    fn sequence_number_reads_the_end_of_an_encoded_event() {
        let mut encoder = EventEncoder::new("o");
        for n in [0, 7, 121, u64::MAX] {
            assert_eq!(
                sequence_number(encoder.encode(1.5, ID.parse().unwrap(), n)),
                Some(n)
            );
        }
        assert_eq!(sequence_number(b"not an event"), None);
        assert_eq!(sequence_number(br#"{"content": "Message #"}"#), None);
        assert_eq!(sequence_number(br#"{"content": "Other #12"}"#), None);
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_serde_json(
            timestamp in 0.0f64..1e11,
            origin in "\\PC{0,24}",
            n in proptest::prelude::any::<u64>(),
            tweak in 0usize..6,
            payload_bytes in proptest::prop_oneof![proptest::strategy::Just(0usize), 0usize..400],
        ) {
            let mut encoder = EventEncoder::with_payload_bytes(&origin, payload_bytes);
            let mut value = encoder.encode(timestamp, ID.parse().unwrap(), n).to_vec();
            // Variants the fast path must hand to serde_json (or reject like it).
            match tweak {
                1 => value = String::from_utf8(value).unwrap().replace(": ", ":").into_bytes(),
                2 => value.insert(1, b' '),
                3 => value.truncate(value.len() - 1),
                4 => value = String::from_utf8(value).unwrap().replacen("1", "01", 1).into_bytes(),
                5 => value.push(b' '),
                _ => {}
            }
            let serde = serde_json::from_slice::<Wire<'_>>(&value).ok();
            match (decode_exact(&value), serde) {
                (Some(fast), Some(slow)) => {
                    proptest::prop_assert_eq!(fast.timestamp.to_bits(), slow.timestamp.to_bits());
                    proptest::prop_assert_eq!(fast.id, slow.id);
                    proptest::prop_assert_eq!(fast.origin, slow.origin);
                    proptest::prop_assert_eq!(fast.content, slow.content);
                    if tweak == 0 {
                        proptest::prop_assert_eq!(sequence_number(&value), Some(n));
                    }
                }
                (Some(_), None) => proptest::prop_assert!(false, "fast path accepted what serde_json rejects: {:?}", String::from_utf8_lossy(&value)),
                (None, _) => {}
            }
        }
    }

    #[test]
    fn derived_ids_name_their_run_and_random_ones_do_not() {
        let key = run_key("339e0f352b4843bfa0d512b796019a92");
        assert_eq!(key, 0x339e_0f35_2b48_43bf);
        for n in [0, 1, 121, u64::MAX] {
            let id = derived_id(key, n).simple().to_string();
            assert_eq!(id.len(), 32);
            assert!(id.starts_with("339e0f352b4843bf"), "{id}");
            assert_eq!(run_of(&id, n), Some(key));
            // The same _id with another n is not that run's event.
            assert_eq!(run_of(&id, n.wrapping_add(1)), None);
        }
        assert_eq!(run_of(ID, 121), None);
        assert_eq!(run_of("not hex", 1), None);
        // Upper-case digits are the same value; a sign, another length or a non-digit is no id.
        let id = derived_id(key, 7).simple().to_string();
        assert_eq!(run_of(&id.to_uppercase(), 7), Some(key));
        assert_eq!(run_of(&format!("+{}", &id[1..]), 7), None);
        assert_eq!(run_of(&id[..31], 7), None);
        assert_eq!(run_of(&format!("{id}0"), 7), None);
        assert_eq!(run_of(&format!("{}g", &id[..31]), 7), None);
        // A key always exists, even for a run id this tool did not write.
        assert_eq!(run_key("run-1"), run_key("run-1"));
        assert_ne!(run_key("run-1"), run_key("run-2"));
    }

    #[test]
    fn the_fast_path_reads_the_encoders_output() {
        let mut encoder = EventEncoder::new("kafka-test-app-0 (10.1.29.185)");
        let value = encoder
            .encode(1707128717.277745, ID.parse().unwrap(), 121)
            .to_vec();
        let wire = decode_exact(&value).expect("the fast path takes our own events");
        assert_eq!(wire.timestamp, 1707128717.277745);
        assert_eq!(wire.origin, "kafka-test-app-0 (10.1.29.185)");
        assert_eq!(wire.content, "Message #121");
    }

    #[test]
    fn decode_unescapes_origin() {
        let value = format!(
            r#"{{"timestamp": 1.5, "_id": "{ID}", "origin": "caf\u00e9 (1.2.3.4)", "content": "Message #0"}}"#
        );
        assert_eq!(
            decode(Some(value.as_bytes())).unwrap().origin,
            "café (1.2.3.4)"
        );
    }
}
