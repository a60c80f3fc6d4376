//! The report as one self-contained HTML page, for people who would rather look than read: the
//! verdict at the top, then charts drawn here as SVG — the rate over time against the target
//! (fleet-wide and per origin, with every stretch without acknowledgements shaded), latency
//! percentiles, expected against seen per origin — a sortable table of every origin, and the
//! JSON report itself. Nothing is fetched from anywhere: the styles and the few lines of script
//! (sorting the table; on the live page, fetching the page's body again every second) are
//! inline.
//!
//! `verify --html`, `consume --html` and the live page at `/` all render a [`Page`] here. Every
//! text on it comes from [`esc`] (origins are user input). Every number drawn is also in a
//! `data-*` attribute, so a test (or a person with the inspector) can check it against the JSON.
//!
//! At hundreds of origins the page stays readable: the timeline draws the fleet's sum and the
//! [`TOP`] origins that matter most (those with anomalies first, then the biggest), the bars
//! show the first [`TOP_BARS`], and the table (scrollable, sortable) has them all.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::tally::latency::LatencySummary;
use crate::verdict::{Anomalies, Findings, Verdict, Weight};
use crate::wire::series::{RunSeries, Series};

/// Origins drawn as their own line on the per-origin timeline.
pub const TOP: usize = 8;
/// Origins drawn as bars of expected against seen.
pub const TOP_BARS: usize = 20;
/// The shortest stretch without acknowledgements (while events were pending) that is shaded on
/// the timeline, in seconds. Run reports sample their counts about once a second, so a single
/// empty one-second bucket can be sampling jitter; three in a row are not.
pub const MIN_GAP_S: u64 = 3;

/// One producer run on the timeline.
#[derive(Debug, Clone)]
pub struct RunLine {
    /// The run's origin.
    pub origin: String,
    /// The rate it asked for (0 = unpaced: no target line).
    pub target_rate: f64,
    /// Its sent, acknowledged and failed counts over time.
    pub series: RunSeries,
    /// The `n` it lost (acknowledged, never seen), as ranges.
    pub lost: Vec<std::ops::Range<u64>>,
}

/// One origin's row: expected against seen, and every anomaly class.
#[derive(Debug, Clone)]
pub struct OriginRow {
    /// The origin.
    pub origin: String,
    /// Events its runs reported acknowledged (`None` for a producer's own page).
    pub expected: Option<u64>,
    /// Events seen of it.
    pub count: u64,
    /// Its anomalies.
    pub anomalies: Anomalies,
}

/// A latency distribution: its percentiles, and the histogram they came from where known.
#[derive(Debug, Clone)]
pub struct Latency {
    /// What is measured: "acknowledgement latency, whole fleet".
    pub name: String,
    /// The key of the JSON report holding `summary` (`ack_latency_ms`, …), for the page's data.
    pub key: String,
    /// p50, p99, p99.9 and max, as in the JSON report.
    pub summary: LatencySummary,
    /// Microseconds; draws the whole percentile curve between the four points.
    pub histogram: Option<Histogram<u64>>,
}

/// Everything a page shows.
#[derive(Debug, Clone)]
pub struct Page {
    /// What the page is about: "verify spark-streaming-store".
    pub title: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Its reasons, what could not be judged, notes.
    pub findings: Findings,
    /// Headline numbers: JSON key and value.
    pub totals: Vec<(String, u64)>,
    /// A line under the headline numbers (the accounting sum).
    pub accounting: String,
    /// The producer runs on the timeline.
    pub runs: Vec<RunLine>,
    /// What consumers consumed over time (a consumer's pages; `verify --group`'s members),
    /// drawn as their sum.
    pub consumed: Vec<Series>,
    /// Every origin.
    pub origins: Vec<OriginRow>,
    /// Latency distributions.
    pub latencies: Vec<Latency>,
    /// The JSON report, pretty-printed.
    pub json: String,
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:20px 0 6px}
.verdict{padding:12px 16px;border-radius:6px;color:#fff;font-size:22px;font-weight:600}
.pass{background:#2e7d32}.fail{background:#c62828}.incomplete{background:#ef6c00}.behind{background:#1565c0}
.verdict ul{font-size:14px;font-weight:400;margin:6px 0 0;padding-left:20px}
.notes{color:#555}.nums{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0}
.num{background:#fff;border:1px solid #ddd;border-radius:4px;padding:4px 10px}
.num b{display:block;font-size:18px}.bad b{color:#c62828}
svg{background:#fff;border:1px solid #ddd;border-radius:4px;width:100%;height:auto}
svg text{font-size:11px;fill:#444}.axis{stroke:#999}.grid{stroke:#eee}
.gap{fill:#c62828;fill-opacity:.13}.gaptext{fill:#c62828}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}
.scroll{max-height:440px;overflow:auto;border:1px solid #ddd;background:#fff}
table{border-collapse:collapse;width:100%}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{position:sticky;top:0;background:#f0f0f0;cursor:pointer;user-select:none}
td:first-child,th:first-child{text-align:left;white-space:normal;word-break:break-all}
td.bad{color:#c62828;font-weight:600}pre{white-space:pre-wrap;word-break:break-all;background:#fff;border:1px solid #ddd;padding:8px}
.lat{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:10px}
";

/// Sorts the origin table by a clicked header (numbers as numbers), and keeps the order when
/// the live page replaces the table.
const SORT_SCRIPT: &str = "
var ktaSort=null;
function ktaApplySort(){var t=document.getElementById('origin-table');if(!t||!ktaSort)return;
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),i=ktaSort.col,d=ktaSort.dir;
rows.sort(function(x,y){var a=x.cells[i].getAttribute('data-v'),c=y.cells[i].getAttribute('data-v');
var na=parseFloat(a),nc=parseFloat(c);var r=(isNaN(na)||isNaN(nc))?a.localeCompare(c):na-nc;return r*d;});
rows.forEach(function(r){b.appendChild(r);});}
document.addEventListener('click',function(e){var th=e.target.closest&&e.target.closest('#origin-table th');
if(!th)return;var col=th.cellIndex;ktaSort={col:col,dir:(ktaSort&&ktaSort.col===col)?-ktaSort.dir:-1};ktaApplySort();});
";

/// The live page's loop: fetches `/charts` (this page's body, rendered anew) every second.
const LIVE_SCRIPT: &str = "
(function(){var root=document.getElementById('page'),state=document.getElementById('live-state'),n=0;
function tick(){fetch('/charts',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text();})
.then(function(html){var open=Array.prototype.map.call(root.querySelectorAll('details[open]'),function(d){return d.id;});
root.innerHTML=html;open.forEach(function(id){var d=document.getElementById(id);if(d)d.open=true;});ktaApplySort();
n+=1;document.body.setAttribute('data-updates',String(n));state.textContent='live: updated '+new Date().toLocaleTimeString();})
.catch(function(e){state.textContent='not updating ('+e.message+'): the process may have ended';})
.then(function(){setTimeout(tick,1000);});}
setTimeout(tick,1000);})();
";

/// The whole document: a saved report (`live` false) or the live page, which refreshes its body
/// from `/charts` every second.
pub fn document(page: &Page, live: bool) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{} — {}</title><style>{STYLE}</style></head><body data-updates=\"0\"><main>",
        esc(&page.title),
        verdict_word(page.verdict)
    );
    if live {
        html.push_str(
            "<p id=\"live-state\" class=\"notes\">live: waiting for the first update</p>",
        );
    }
    let _ = write!(html, "<div id=\"page\">{}</div>", body(page));
    html.push_str("</main><script>");
    html.push_str(SORT_SCRIPT);
    if live {
        html.push_str(LIVE_SCRIPT);
    }
    html.push_str("</script></body></html>\n");
    html
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Incomplete => "INCOMPLETE",
        Verdict::Behind => "BEHIND",
    }
}

/// The page's body (what the live page replaces every second).
pub fn body(page: &Page) -> String {
    let mut html = String::new();
    let class = verdict_word(page.verdict).to_lowercase();
    let _ = write!(
        html,
        "<h1>{}</h1><div class=\"verdict {class}\" id=\"verdict\" data-verdict=\"{class}\">verdict: {}",
        esc(&page.title),
        verdict_word(page.verdict)
    );
    let f = &page.findings;
    for (list, class) in [
        (&f.reasons, "reasons"),
        (&f.incomplete, "incomplete"),
        (&f.behind, "behind"),
    ] {
        if !list.is_empty() {
            let _ = write!(html, "<ul class=\"{class}\">");
            for item in list {
                let _ = write!(html, "<li>{}</li>", esc(item));
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("</div>");
    if !f.notes.is_empty() {
        html.push_str("<ul class=\"notes\">");
        for note in &f.notes {
            let _ = write!(html, "<li>{}</li>", esc(note));
        }
        html.push_str("</ul>");
    }
    html.push_str("<div class=\"nums\">");
    for (key, value) in &page.totals {
        let bad = is_bad(key) && *value > 0;
        let _ = write!(
            html,
            "<div class=\"num{}\" data-key=\"{}\" data-value=\"{value}\">{}<b>{value}</b></div>",
            if bad { " bad" } else { "" },
            esc(key),
            esc(&key.replace('_', " "))
        );
    }
    html.push_str("</div>");
    let _ = write!(html, "<p id=\"accounting\">{}</p>", esc(&page.accounting));
    timelines(page, &mut html);
    if !page.latencies.is_empty() {
        html.push_str("<h2>Latency percentiles</h2><div class=\"lat\">");
        for latency in &page.latencies {
            html.push_str(&latency_chart(latency));
        }
        html.push_str("</div>");
    }
    if !page.origins.is_empty() {
        let _ = write!(
            html,
            "<h2>Expected against seen, per origin ({} origins)</h2>",
            page.origins.len()
        );
        html.push_str(&origin_bars(&page.origins));
        html.push_str(&origin_table(&page.origins));
    }
    let _ = write!(
        html,
        "<details id=\"json\"><summary>The JSON report (every number above)</summary><pre id=\"json-text\">{}</pre></details>",
        esc(&page.json)
    );
    html
}

/// Whether a headline number above zero is bad news (a class that fails a verdict).
fn is_bad(key: &str) -> bool {
    Anomalies::default()
        .classes()
        .any(|(k, weight, _, _)| k == key && weight == Weight::Fail)
        || key == "failed"
}

/// The common time axis of several series: from the earliest start, in buckets as wide as the
/// widest series' buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timeline {
    /// The earliest start of a series drawn (seconds since the epoch).
    start: f64,
    /// The width of a bucket: the widest series' (a coarsened series is never split).
    step_s: u64,
    /// Buckets up to the latest end of a series drawn.
    len: usize,
}

impl Timeline {
    fn of<'a>(series: impl Iterator<Item = &'a Series> + Clone) -> Option<Timeline> {
        let live = series.filter(|s| !s.counts.is_empty());
        let start = live.clone().map(|s| s.start).reduce(f64::min)?;
        let step_s = live.clone().map(|s| s.step_s.max(1)).max()?;
        let end = live
            .map(|s| s.start + (s.counts.len() as u64 * s.step_s.max(1)) as f64)
            .reduce(f64::max)?;
        let len = ((end - start) / step_s as f64).ceil().max(1.0) as usize;
        Some(Timeline { start, step_s, len })
    }

    /// The bucket of time `at`.
    fn slot(&self, at: f64) -> usize {
        (((at - self.start) / self.step_s as f64).floor().max(0.0) as usize).min(self.len - 1)
    }

    /// `series` in this timeline's buckets.
    fn align(&self, series: &Series) -> Vec<u64> {
        let mut out = vec![0; self.len];
        self.add(series, &mut out);
        out
    }

    fn add(&self, series: &Series, into: &mut [u64]) {
        let step = series.step_s.max(1);
        for (i, &count) in series.counts.iter().enumerate() {
            into[self.slot(series.start + (i as u64 * step) as f64)] += count;
        }
    }

    /// The buckets a series covers, first to last.
    fn span(&self, series: &Series) -> Option<(usize, usize)> {
        let last = series.counts.len().checked_sub(1)?;
        let step = series.step_s.max(1);
        Some((
            self.slot(series.start),
            self.slot(series.start + (last as u64 * step) as f64),
        ))
    }
}

/// A stretch of buckets `[from, to)` in which a run had events pending and none was
/// acknowledged or failed.
#[derive(Debug, Clone, PartialEq)]
struct Gap {
    /// The first bucket without acknowledgements.
    from: usize,
    /// The bucket after the last one.
    to: usize,
    /// The origins whose runs had nothing acknowledged then (each once).
    origins: Vec<String>,
}

/// The stretches of `run` without acknowledgements while events were pending, at least
/// [`MIN_GAP_S`] long.
fn run_gaps(timeline: &Timeline, run: &RunSeries) -> Vec<(usize, usize)> {
    let sent = timeline.align(&run.sent);
    let acked = timeline.align(&run.acked);
    let failed = timeline.align(&run.failed);
    let Some((first, last)) = timeline.span(&run.sent) else {
        return Vec::new();
    };
    let min_buckets = MIN_GAP_S.div_ceil(timeline.step_s) as usize;
    let (mut total_sent, mut settled) = (0u64, 0u64);
    let mut gaps = Vec::new();
    let mut open: Option<usize> = None;
    for slot in first..=last {
        total_sent += sent[slot];
        let settled_here = acked[slot] + failed[slot];
        let quiet = settled_here == 0 && total_sent > settled;
        settled += settled_here;
        match (quiet, open) {
            (true, None) => open = Some(slot),
            (false, Some(from)) => {
                if slot - from >= min_buckets {
                    gaps.push((from, slot));
                }
                open = None;
            }
            _ => {}
        }
    }
    if let Some(from) = open {
        if last + 1 - from >= min_buckets {
            gaps.push((from, last + 1));
        }
    }
    gaps
}

/// Every run's gaps, overlapping ones merged, each with the origins it held.
fn gaps(timeline: &Timeline, runs: &[RunLine]) -> Vec<Gap> {
    let mut all: Vec<(usize, usize, &str)> = runs
        .iter()
        .flat_map(|run| {
            run_gaps(timeline, &run.series)
                .into_iter()
                .map(move |(from, to)| (from, to, run.origin.as_str()))
        })
        .collect();
    all.sort_by_key(|&(from, to, _)| (from, to));
    let mut merged: Vec<Gap> = Vec::new();
    for (from, to, origin) in all {
        match merged.last_mut() {
            Some(gap) if from <= gap.to => {
                gap.to = gap.to.max(to);
                if !gap.origins.iter().any(|o| o == origin) {
                    gap.origins.push(origin.to_owned());
                }
            }
            _ => merged.push(Gap {
                from,
                to,
                origins: vec![origin.to_owned()],
            }),
        }
    }
    merged
}

/// Every run's lost events per bucket of `timeline`, by when they were sent: a run sends its `n`
/// in order, so the bucket in which its sent count passes `n` sent it (to the second of the
/// run's samples). A loss beyond the sent series (sent after its last sample) counts in its last
/// bucket.
fn losses(timeline: &Timeline, runs: &[RunLine]) -> Vec<u64> {
    let mut lost = vec![0u64; timeline.len];
    for run in runs.iter().filter(|r| !r.lost.is_empty()) {
        let sent = timeline.align(&run.series.sent);
        let last = timeline.span(&run.series.sent).map_or(0, |(_, last)| last);
        let mut ranges = run.lost.iter().peekable();
        let mut before = 0u64;
        for (slot, &count) in sent.iter().enumerate() {
            let end = before + count;
            while let Some(r) = ranges.peek() {
                lost[slot] += r.end.min(end).saturating_sub(r.start.max(before));
                if r.end > end {
                    break;
                }
                ranges.next();
            }
            before = end;
        }
        for r in ranges {
            lost[last] += r.end - r.start.max(before);
        }
    }
    lost
}

/// One line of a chart: per-bucket counts, drawn as a rate (count / bucket width).
struct Line {
    /// The legend's words (an origin for per-origin lines).
    name: String,
    /// What the line is, for tests and styles: `target`, `sent`, `acked`, `failed`,
    /// `consumed`, `origin-acked`.
    kind: &'static str,
    /// Its stroke.
    color: &'static str,
    /// Dashed (the target, which is asked for rather than measured).
    dashed: bool,
    /// Events per bucket of the chart's timeline.
    counts: Vec<f64>,
}

const PALETTE: [&str; TOP] = [
    "#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#558b2f", "#ad1457", "#4e342e", "#37474f",
];

const W: f64 = 1000.0;
const H: f64 = 240.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP_PAD: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// A number for a data attribute or a label: integers without a fraction.
fn num(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// A round step for about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// The UTC time of the epoch seconds `at`, to the second.
fn utc(at: f64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(at.max(0.0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// A rate chart over `timeline` with `gaps` shaded.
fn rate_chart(
    id: &str,
    title: &str,
    timeline: &Timeline,
    lines: &[Line],
    gaps: &[Gap],
    lost: &[u64],
    origins: usize,
) -> String {
    let step = timeline.step_s as f64;
    let (scale, peak) = scale(lines, step);
    let y_step = nice_step(scale, 4.0);
    let y_max = (scale / y_step).ceil() * y_step;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP_PAD - BOTTOM;
    let seconds = (timeline.len as f64 * step).max(1.0);
    let x = |slot: f64| LEFT + plot_w * (slot * step) / seconds;
    let y = |rate: f64| TOP_PAD + plot_h * (1.0 - rate.min(y_max) / y_max);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg id=\"{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" data-start=\"{}\" data-step=\"{}\" \
         data-buckets=\"{}\"><title>{}</title>",
        num(timeline.start),
        timeline.step_s,
        timeline.len,
        esc(title)
    );
    let mut tick = 0.0;
    while tick <= y_max + y_step / 2.0 {
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            num(tick),
            y = y(tick)
        );
        tick += y_step;
    }
    let x_step = nice_step(seconds, 8.0).max(1.0);
    let mut t = 0.0;
    while t <= seconds + 0.001 {
        let px = LEFT + plot_w * t / seconds;
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP_PAD}\" y2=\"{}\"/>\
             <text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">+{} s</text>",
            H - BOTTOM,
            H - BOTTOM + 14.0,
            num(t)
        );
        t += x_step;
    }
    for gap in gaps {
        let (x0, x1) = (x(gap.from as f64), x(gap.to as f64));
        let secs = (gap.to - gap.from) as u64 * timeline.step_s;
        let shown: Vec<&str> = gap.origins.iter().take(5).map(String::as_str).collect();
        let more = gap.origins.len().saturating_sub(shown.len());
        let who = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        let _ = write!(
            svg,
            "<g class=\"gapmark\" data-from=\"{}\" data-to=\"{}\" data-seconds=\"{secs}\" data-origins=\"{}\">\
             <title>no acknowledgement for {secs} s from {} ({}: {})</title>\
             <rect class=\"gap\" x=\"{x0:.1}\" y=\"{TOP_PAD}\" width=\"{:.1}\" height=\"{plot_h}\"/>\
             <text class=\"gaptext\" x=\"{:.1}\" y=\"{}\">no acks {secs} s{}</text></g>",
            gap.from,
            gap.to,
            gap.origins.len(),
            utc(timeline.start + gap.from as f64 * step),
            if gap.origins.len() == 1 { "origin" } else { "origins" },
            esc(&who),
            (x1 - x0).max(1.0),
            x0 + 2.0,
            TOP_PAD + 12.0,
            if gap.origins.len() < origins {
                format!(" ({} of {origins} origins)", gap.origins.len())
            } else {
                String::new()
            }
        );
    }
    for line in lines {
        let points: Vec<String> = line
            .counts
            .iter()
            .enumerate()
            .map(|(slot, &c)| format!("{:.1},{:.1}", x(slot as f64 + 0.5), y(c / step)))
            .collect();
        let values: Vec<String> = line.counts.iter().map(|&c| num(c)).collect();
        let _ = write!(
            svg,
            "<polyline class=\"series\" data-series=\"{}\" data-name=\"{}\" data-counts=\"{}\" \
             fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{} points=\"{}\"><title>{}</title></polyline>",
            line.kind,
            esc(&line.name),
            values.join(" "),
            line.color,
            if line.kind == "origin-acked" { 1.5 } else { 2.0 },
            if line.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            points.join(" "),
            esc(&line.name)
        );
    }
    for (slot, &n) in lost.iter().enumerate().filter(|(_, &n)| n > 0) {
        let (x0, x1) = (x(slot as f64), x(slot as f64 + 1.0));
        let _ = write!(
            svg,
            "<g class=\"lossmark\" data-slot=\"{slot}\" data-lost=\"{n}\"><title>{n} lost (acknowledged, \
             never seen), sent from {} UTC</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"8\" fill=\"#c62828\"/><text class=\"gaptext\" x=\"{x0:.1}\" y=\"{:.1}\">{n} lost</text></g>",
            utc(timeline.start + slot as f64 * step),
            H - BOTTOM - 8.0,
            (x1 - x0).max(3.0),
            H - BOTTOM - 12.0
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP_PAD}\" y2=\"{}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\
         <text x=\"{LEFT}\" y=\"10\" text-anchor=\"middle\">events/s</text></svg>",
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
    let mut html = format!("<h2>{}</h2>{svg}<div class=\"legend\">", esc(title));
    for line in lines {
        let _ = write!(
            html,
            "<span><i style=\"background:{}\"></i>{}</span>",
            line.color,
            esc(&line.name)
        );
    }
    if !gaps.is_empty() {
        html.push_str("<span><i class=\"gap\" style=\"background:#c62828;opacity:.3;height:10px\"></i>no acknowledgement while events were pending</span>");
    }
    if lost.iter().any(|&n| n > 0) {
        html.push_str("<span><i style=\"background:#c62828;height:8px\"></i>lost events, when they were sent</span>");
    }
    let cut = if peak > y_max {
        format!(
            "; the scale stops at {} events/s, lines above it run along the top (the peak: {} events/s)",
            num(y_max),
            num((peak * 10.0).round() / 10.0)
        )
    } else {
        String::new()
    };
    let _ = write!(
        html,
        "</div><p class=\"notes\">from {} UTC, {} s per point{cut}</p>",
        utc(timeline.start),
        timeline.step_s
    );
    html
}

/// The rate a chart's scale reaches, and the highest rate of its lines. A burst after a stall
/// (the backlog acknowledged at once) would squash the steady rate into the bottom of the chart,
/// so the scale stops at one and a half times the higher of the target and the 95th percentile
/// of the rates, when the peak is well above that.
fn scale(lines: &[Line], step: f64) -> (f64, f64) {
    let mut rates: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.counts.iter().map(|&c| c / step))
        .filter(|&r| r > 0.0)
        .collect();
    rates.sort_by(f64::total_cmp);
    let peak = rates.last().copied().unwrap_or(0.0).max(1.0);
    let p95 = rates
        .get(rates.len().saturating_sub(1) * 95 / 100)
        .copied()
        .unwrap_or(0.0);
    let target = lines
        .iter()
        .filter(|l| l.kind == "target")
        .flat_map(|l| l.counts.iter().map(|&c| c / step))
        .fold(0.0, f64::max);
    let cap = 1.5 * p95.max(target);
    if cap > 0.0 && peak > 1.2 * cap {
        (cap, peak)
    } else {
        (peak, peak)
    }
}

/// Origins in the order they matter: failing anomalies first, then anything counted, then the
/// biggest.
fn ranked(origins: &[OriginRow]) -> Vec<&OriginRow> {
    let mut ranked: Vec<&OriginRow> = origins.iter().collect();
    let weight = |o: &OriginRow, w: Weight| {
        o.anomalies
            .classes()
            .filter(|c| c.1 == w)
            .map(|c| c.3)
            .sum::<u64>()
    };
    ranked.sort_by(|a, b| {
        (
            weight(b, Weight::Fail),
            weight(b, Weight::Incomplete),
            b.count,
        )
            .cmp(&(
                weight(a, Weight::Fail),
                weight(a, Weight::Incomplete),
                a.count,
            ))
            .then_with(|| a.origin.cmp(&b.origin))
    });
    ranked
}

/// The fleet's timeline (target, sent, acked, failed, consumed) and, with several origins, the
/// acknowledgements of the [`TOP`] origins.
fn timelines(page: &Page, html: &mut String) {
    let all = page
        .runs
        .iter()
        .flat_map(|r| [&r.series.sent, &r.series.acked, &r.series.failed])
        .chain(page.consumed.iter());
    let Some(timeline) = Timeline::of(all) else {
        return;
    };
    let sum = |pick: fn(&RunSeries) -> &Series| {
        let mut total = vec![0u64; timeline.len];
        for run in &page.runs {
            timeline.add(pick(&run.series), &mut total);
        }
        total.into_iter().map(|c| c as f64).collect::<Vec<f64>>()
    };
    let (sent, acked, failed) = (sum(|s| &s.sent), sum(|s| &s.acked), sum(|s| &s.failed));
    let mut target = vec![0.0; timeline.len];
    for run in page.runs.iter().filter(|r| r.target_rate > 0.0) {
        if let Some((first, last)) = timeline.span(&run.series.sent) {
            for slot in &mut target[first..=last] {
                *slot += run.target_rate * timeline.step_s as f64;
            }
        }
    }
    let mut lines = Vec::new();
    if target.iter().any(|&t| t > 0.0) {
        lines.push(Line {
            name: "target".into(),
            kind: "target",
            color: "#888",
            dashed: true,
            counts: target,
        });
    }
    if !page.runs.is_empty() {
        lines.push(Line {
            name: "sent".into(),
            kind: "sent",
            color: "#90caf9",
            dashed: false,
            counts: sent,
        });
        lines.push(Line {
            name: "acknowledged".into(),
            kind: "acked",
            color: "#1565c0",
            dashed: false,
            counts: acked,
        });
        if failed.iter().any(|&f| f > 0.0) {
            lines.push(Line {
                name: "failed".into(),
                kind: "failed",
                color: "#c62828",
                dashed: false,
                counts: failed,
            });
        }
    }
    if !page.consumed.is_empty() {
        let mut total = vec![0u64; timeline.len];
        for consumed in &page.consumed {
            timeline.add(consumed, &mut total);
        }
        lines.push(Line {
            name: "consumed".into(),
            kind: "consumed",
            color: "#2e7d32",
            dashed: false,
            counts: total.into_iter().map(|c| c as f64).collect(),
        });
    }
    let gaps = gaps(&timeline, &page.runs);
    let origins: std::collections::BTreeSet<&str> =
        page.runs.iter().map(|r| r.origin.as_str()).collect();
    let title = match (page.runs.len(), origins.len()) {
        (0, _) => "Consumed over time".to_owned(),
        (1, 1) => "Rate over time".to_owned(),
        (runs, 1) => format!("Rate over time ({runs} runs of one origin)"),
        (runs, n) => format!("Rate over time, whole fleet ({runs} runs of {n} origins)"),
    };
    html.push_str(&rate_chart(
        "rate-fleet",
        &title,
        &timeline,
        &lines,
        &gaps,
        &losses(&timeline, &page.runs),
        origins.len(),
    ));
    if origins.len() > 1 {
        let ranked = ranked(&page.origins);
        let top: Vec<&str> = ranked
            .iter()
            .map(|o| o.origin.as_str())
            .filter(|o| origins.contains(o))
            .take(TOP)
            .collect();
        let lines: Vec<Line> = top
            .iter()
            .zip(PALETTE)
            .map(|(&origin, color)| {
                let mut total = vec![0u64; timeline.len];
                for run in page.runs.iter().filter(|r| r.origin == origin) {
                    timeline.add(&run.series.acked, &mut total);
                }
                Line {
                    name: origin.to_owned(),
                    kind: "origin-acked",
                    color,
                    dashed: false,
                    counts: total.into_iter().map(|c| c as f64).collect(),
                }
            })
            .collect();
        let title = if origins.len() > top.len() {
            format!(
                "Acknowledged per origin: {} of {} origins (those with anomalies first, then the \
                 biggest; all of them in the table)",
                top.len(),
                origins.len()
            )
        } else {
            "Acknowledged per origin".to_owned()
        };
        html.push_str(&rate_chart(
            "rate-origins",
            &title,
            &timeline,
            &lines,
            &gaps,
            &[],
            origins.len(),
        ));
    }
}

/// Quantiles the percentile curve passes through.
const CURVE: [f64; 12] = [
    0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0,
];

/// Where quantile `q` sits on the curve's x axis: evenly per "nine" (0, 90%, 99%, 99.9%, …).
fn nines(q: f64) -> f64 {
    (1.0 / (1.0 - q).max(1e-5)).log10().min(5.0)
}

/// A latency distribution: the percentile curve (milliseconds, log scale) with p50, p99, p99.9
/// and max marked and labelled as in the JSON report.
fn latency_chart(latency: &Latency) -> String {
    const LW: f64 = 520.0;
    const LH: f64 = 220.0;
    let s = &latency.summary;
    let marks = [
        ("p50", 0.5, s.p50),
        ("p99", 0.99, s.p99),
        ("p999", 0.999, s.p999),
        ("max", 1.0, s.max),
    ];
    let curve: Vec<(f64, f64)> = match &latency.histogram {
        Some(h) if !h.is_empty() => CURVE
            .iter()
            .map(|&q| {
                let us = if q >= 1.0 {
                    h.max()
                } else {
                    h.value_at_quantile(q)
                };
                (q, us as f64 / 1000.0)
            })
            .collect(),
        _ => marks.iter().map(|&(_, q, ms)| (q, ms)).collect(),
    };
    let low = curve
        .iter()
        .map(|c| c.1)
        .chain(marks.iter().map(|m| m.2))
        .filter(|&ms| ms > 0.0)
        .fold(f64::INFINITY, f64::min);
    let high = curve
        .iter()
        .map(|c| c.1)
        .chain(marks.iter().map(|m| m.2))
        .fold(0.0f64, f64::max);
    let (lo_exp, hi_exp) = if high > 0.0 {
        let lo = low.min(high).log10().floor();
        (lo, high.log10().ceil().max(lo + 1.0))
    } else {
        (0.0, 1.0)
    };
    let (left, right, top, bottom) = (64.0, 16.0, 14.0, 30.0);
    let (pw, ph) = (LW - left - right, LH - top - bottom);
    let max_x = nines(1.0);
    let x = |q: f64| left + pw * nines(q) / max_x;
    let y = |ms: f64| {
        let v = if ms > 0.0 { ms.log10() } else { lo_exp };
        top + ph * (1.0 - (v - lo_exp) / (hi_exp - lo_exp))
    };
    let mut svg = format!(
        "<svg class=\"latency\" data-key=\"{}\" viewBox=\"0 0 {LW} {LH}\" role=\"img\"><title>{}</title>",
        esc(&latency.key),
        esc(&latency.name)
    );
    let mut e = lo_exp;
    while e <= hi_exp {
        let ms = 10f64.powf(e);
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LW - right,
            left - 4.0,
            y(ms) + 4.0,
            if ms >= 1000.0 {
                format!("{} s", num(ms / 1000.0))
            } else {
                format!("{} ms", num(ms))
            },
            py = y(ms)
        );
        e += 1.0;
    }
    for (label, q) in [
        ("p0", 0.0),
        ("p90", 0.9),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("p99.99", 0.9999),
        ("max", 1.0),
    ] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            x(q),
            LH - bottom + 14.0
        );
    }
    let points: Vec<String> = curve
        .iter()
        .map(|&(q, ms)| format!("{:.1},{:.1}", x(q), y(ms)))
        .collect();
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    let mut legend = String::new();
    for (key, q, ms) in marks {
        let (px, py) = (x(q), y(ms));
        let _ = write!(
            svg,
            "<g class=\"mark\" data-quantile=\"{key}\" data-ms=\"{}\"><title>{key} {ms:.1} ms</title>\
             <circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"4\" fill=\"#c62828\"/></g>",
            num(ms),
        );
        let _ = write!(
            legend,
            "<span><b>{}</b> {ms:.1} ms</span>",
            if key == "p999" { "p99.9" } else { key }
        );
    }
    svg.push_str("</svg>");
    format!(
        "<div><h2>{}</h2>{svg}<div class=\"legend\">{legend}</div></div>",
        esc(&latency.name)
    )
}

/// Expected (outline) against seen (filled) and lost (red) for the first [`TOP_BARS`] origins.
fn origin_bars(origins: &[OriginRow]) -> String {
    let ranked = ranked(origins);
    let shown: Vec<&OriginRow> = ranked.into_iter().take(TOP_BARS).collect();
    let row_h = 22.0;
    let label_w = 330.0;
    let h = 20.0 + row_h * shown.len() as f64;
    let max = shown
        .iter()
        .map(|o| o.count.max(o.expected.unwrap_or(0)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bar_w = W - label_w - 180.0;
    let mut svg = format!("<svg id=\"origins-chart\" viewBox=\"0 0 {W} {h}\" role=\"img\"><title>expected against seen per origin</title>");
    for (i, o) in shown.iter().enumerate() {
        let top = 10.0 + row_h * i as f64;
        let expected = o.expected.unwrap_or(0);
        let label: String = if o.origin.chars().count() > 48 {
            format!("{}…", o.origin.chars().take(47).collect::<String>())
        } else {
            o.origin.clone()
        };
        let w = |n: u64| bar_w * n as f64 / max;
        let _ = write!(
            svg,
            "<g class=\"origin\" data-origin=\"{}\" data-expected=\"{}\" data-count=\"{}\" data-lost=\"{}\" data-duplicates=\"{}\">\
             <title>{}: expected {}, seen {}, lost {}, duplicates {}</title>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#1565c0\" fill-opacity=\".75\"/>",
            esc(&o.origin),
            o.expected.map_or("-".to_owned(), |e| e.to_string()),
            o.count,
            o.anomalies.lost,
            o.anomalies.duplicates,
            esc(&o.origin),
            o.expected.map_or("-".to_owned(), |e| e.to_string()),
            o.count,
            o.anomalies.lost,
            o.anomalies.duplicates,
            label_w - 8.0,
            top + 11.0,
            esc(&label),
            top,
            w(o.count),
        );
        if o.anomalies.lost > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#c62828\"/>",
                label_w + w(expected.saturating_sub(o.anomalies.lost)),
                w(o.anomalies.lost).max(2.0)
            );
        }
        if o.expected.is_some() {
            let _ = write!(
                svg,
                "<rect x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"18\" fill=\"none\" stroke=\"#222\"/>",
                top - 2.0,
                w(expected)
            );
        }
        let mut words = format!("{}", o.count);
        if let Some(e) = o.expected {
            let _ = write!(words, " / {e}");
        }
        if o.anomalies.lost > 0 {
            let _ = write!(words, ", {} lost", o.anomalies.lost);
        }
        if o.anomalies.duplicates > 0 {
            let _ = write!(words, ", {} dup", o.anomalies.duplicates);
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            label_w + w(o.count.max(expected)) + 6.0,
            top + 11.0,
            esc(&words)
        );
    }
    svg.push_str("</svg>");
    let mut html = String::new();
    if origins.len() > shown.len() {
        let _ = write!(
            html,
            "<p class=\"notes\">the {} of {} origins that matter most (anomalies first, then the \
             biggest); the table below has every one</p>",
            shown.len(),
            origins.len()
        );
    }
    html.push_str(&svg);
    html.push_str("<p class=\"notes\">filled: seen on the topic; outline: acknowledged (expected); red: lost</p>");
    html
}

/// Every origin, every anomaly class any origin has, sortable by any column.
fn origin_table(origins: &[OriginRow]) -> String {
    let always = ["lost", "duplicates", "out_of_order"];
    let classes: Vec<&'static str> = Anomalies::default()
        .classes()
        .map(|c| c.0)
        .filter(|key| {
            always.contains(key)
                || origins
                    .iter()
                    .any(|o| o.anomalies.classes().any(|c| c.0 == *key && c.3 > 0))
        })
        .collect();
    let mut html = String::from(
        "<h2>Every origin</h2><p class=\"notes\">click a column to sort</p>\
         <div class=\"scroll\"><table id=\"origin-table\"><thead><tr><th>origin</th><th>expected</th><th>count</th>",
    );
    for key in &classes {
        let _ = write!(html, "<th>{}</th>", key.replace('_', " "));
    }
    html.push_str("</tr></thead><tbody>");
    for o in origins {
        let expected = o.expected.map_or("-".to_owned(), |e| e.to_string());
        let _ = write!(
            html,
            "<tr data-origin=\"{}\"><td data-v=\"{}\">{}</td><td data-v=\"{expected}\">{expected}</td>\
             <td data-v=\"{}\">{}</td>",
            esc(&o.origin),
            esc(&o.origin),
            esc(&o.origin),
            o.count,
            o.count
        );
        for (key, weight, _, count) in o.anomalies.classes() {
            if classes.contains(&key) {
                let bad = count > 0 && weight != Weight::Counted;
                let _ = write!(
                    html,
                    "<td data-k=\"{key}\" data-v=\"{count}\"{}>{count}</td>",
                    if bad { " class=\"bad\"" } else { "" }
                );
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Range;

    fn run(origin: &str, start: f64, acked: &[u64]) -> RunLine {
        let mut series = RunSeries::new(start);
        let (mut sent, mut total) = (0, 0);
        for (second, &a) in acked.iter().enumerate() {
            sent += 10;
            total += a;
            series.sample(start + second as f64 + 0.5, sent, total, 0);
        }
        RunLine {
            origin: origin.to_owned(),
            target_rate: 10.0,
            series,
            lost: vec![],
        }
    }

    fn page(runs: Vec<RunLine>, origins: Vec<OriginRow>) -> Page {
        Page {
            title: "verify t".into(),
            verdict: Verdict::Pass,
            findings: Findings::default(),
            totals: vec![("consumed".into(), 5)],
            accounting: "5 events = 5 delivered".into(),
            runs,
            consumed: vec![],
            origins,
            latencies: vec![],
            json: "{}".into(),
        }
    }

    fn row(origin: &str, count: u64) -> OriginRow {
        OriginRow {
            origin: origin.to_owned(),
            expected: Some(count),
            count,
            anomalies: Anomalies::default(),
        }
    }

    #[test]
    fn text_is_escaped_everywhere() {
        let evil = "<script>alert(1)</script> \"a\" & 'b'";
        let mut p = page(vec![run(evil, 100.0, &[10, 10])], vec![row(evil, 20)]);
        p.findings.reasons.push(format!("{evil}: 3 lost"));
        p.json = format!("{{\"origin\": \"{evil}\"}}");
        let html = document(&p, false);
        assert!(!html.contains(evil));
        assert!(!html.contains("<script>alert"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;a&quot; &amp; &#39;b&#39;")
        );
        // The page's own script is the only one.
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn a_stretch_without_acks_is_shaded_and_a_single_empty_second_is_not() {
        // Acks stop for 20 s from second 10, while the run keeps sending.
        let mut acked = vec![10u64; 10];
        acked.extend([0; 20]);
        acked.push(200);
        acked.extend([10; 5]);
        // One empty second (sampling jitter) at 33.
        acked[33] = 0;
        acked[34] = 20;
        let p = page(vec![run("a", 1000.0, &acked)], vec![row("a", 360)]);
        let timeline = Timeline::of(p.runs.iter().map(|r| &r.series.acked)).unwrap();
        assert_eq!(
            gaps(&timeline, &p.runs),
            vec![Gap {
                from: 10,
                to: 30,
                origins: vec!["a".into()]
            }]
        );
        let html = body(&p);
        assert!(html.contains("data-from=\"10\" data-to=\"30\" data-seconds=\"20\""));
        assert!(html.contains("no acks 20 s"));
    }

    #[test]
    fn lost_events_are_marked_when_they_were_sent() {
        // 10 sent a second; n 25..28 (third second) and 95..100 (tenth) lost.
        let mut a = run("a", 1000.0, &[10; 10]);
        a.lost = vec![25..28, 95..100];
        let timeline = Timeline::of([&a.series.sent].into_iter()).unwrap();
        let mut expected = vec![0; 10];
        (expected[2], expected[9]) = (3, 5);
        assert_eq!(losses(&timeline, std::slice::from_ref(&a)), expected);
        // An n past the last sample counts in the last bucket.
        a.lost = vec![Range {
            start: 99,
            end: 103,
        }];
        expected = vec![0; 10];
        expected[9] = 4;
        assert_eq!(losses(&timeline, std::slice::from_ref(&a)), expected);
        let html = body(&page(vec![a], vec![row("a", 96)]));
        assert!(html.contains("<g class=\"lossmark\" data-slot=\"9\" data-lost=\"4\">"));
    }

    #[test]
    fn runs_align_on_one_timeline_and_add_up() {
        let a = run("a", 1000.0, &[1, 2, 3]);
        let b = run("b", 1002.0, &[4, 5]);
        let timeline = Timeline::of([&a.series.acked, &b.series.acked].into_iter()).unwrap();
        assert_eq!(timeline.len, 4);
        assert_eq!(timeline.align(&a.series.acked), vec![1, 2, 3, 0]);
        assert_eq!(timeline.align(&b.series.acked), vec![0, 0, 4, 5]);
    }

    #[test]
    fn three_hundred_origins_draw_the_top_and_list_all() {
        let runs: Vec<RunLine> = (0..300)
            .map(|i| run(&format!("o-{i:03}"), 1000.0, &[10, 10]))
            .collect();
        let mut origins: Vec<OriginRow> = (0..300).map(|i| row(&format!("o-{i:03}"), 20)).collect();
        origins[123].anomalies.lost = 4;
        let html = body(&page(runs, origins));
        assert_eq!(html.matches("data-series=\"origin-acked\"").count(), TOP);
        assert_eq!(html.matches("<g class=\"origin\"").count(), TOP_BARS);
        assert_eq!(html.matches("<tr data-origin=").count(), 300);
        // The origin with a loss is drawn first.
        let first = html
            .find("data-series=\"origin-acked\" data-name=\"")
            .unwrap();
        assert!(html[first..].starts_with("data-series=\"origin-acked\" data-name=\"o-123\""));
        assert!(html.contains("8 of 300 origins"));
    }

    #[test]
    fn latency_marks_carry_the_reported_percentiles() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let summary = LatencySummary::of(&h);
        let mut p = page(vec![], vec![]);
        p.latencies.push(Latency {
            name: "ack latency".into(),
            key: "ack_latency_ms".into(),
            summary,
            histogram: Some(h),
        });
        let html = body(&p);
        assert!(html.contains(&format!(
            "data-quantile=\"p99\" data-ms=\"{}\"",
            num(summary.p99)
        )));
        assert!(html.contains(&format!(
            "data-quantile=\"max\" data-ms=\"{}\"",
            num(summary.max)
        )));
        assert!((summary.max - 1000.0).abs() < 1.0);
    }
}
