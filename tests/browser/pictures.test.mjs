// Pictures of a run, in a real browser: Debian's chromium, driven by playwright-core.
//
// A real run feeds them: a one-node Apache Kafka (scripts/kafka), three producers of the real
// binary at 20 events/s for 50 s (one origin carries a <script> tag), a consumer serving its live
// page, and the broker stopped (SIGSTOP) for 20 s in the middle. The test keeps its own ground
// truth: when it stopped and resumed the broker, how many events each producer was asked for.
// Then, in the browser:
//   - the consumer's live page loads without console errors, updates every second, and the
//     numbers it draws are the numbers of the report it draws them from (and, once everything is
//     consumed, those of /report);
//   - a producer's live page does the same;
//   - the pages of `consume --html` and `verify --html` load from file:// with no request
//     anywhere else and no console error, embed exactly the JSON report the command printed, and
//     their charts hold its numbers: the verdict, the totals, every origin's expected and seen,
//     the latency percentiles, the acknowledged-per-second series adding up to every run's
//     acknowledgements with a stretch of zeros where the broker was stopped, marked as a gap;
//   - the origin with a <script> tag is shown as text, never run.
// Screenshots of each page go to $KTA_BROWSER_OUT (named in the log).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.KTA_BIN;
const OUT = process.env.KTA_BROWSER_OUT || fs.mkdtempSync(path.join(os.tmpdir(), "kta-pictures-"));
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), "kta-browser-"));
const KAFKA_DIR = path.join(WORK, "kafka");
const TOPIC = "pictures";
const GROUP_PREFIX = "pictures-";
const RATE = 20;
const DURATION_S = 50;
const PER_PRODUCER = RATE * DURATION_S;
// The stop begins once the live pages are checked, at 10 s at the earliest and 25 s at the latest
// (so that it ends well before the producers do).
const STOP_AFTER_MS = 10_000;
const STOP_BY_MS = 25_000;
const STOPPED_MS = 20_000;
const ORIGINS = [
  "kafka-test-app-0 (10.1.29.185)",
  "kafka-test-app-1 (10.1.29.186)",
  '<script>window.__pwned = 1</script> "x" & y (10.1.29.187)',
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A free port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** Runs the binary in the background; resolves `done` with its exit code, stdout and stderr. */
function start(args, env) {
  const child = spawn(BIN, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** Polls `check` (bounded in time) until it returns a value. */
async function until(what, within_ms, check) {
  const deadline = Date.now() + within_ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${within_ms} ms waiting for ${what}`);
    await sleep(200);
  }
}

async function getJson(url) {
  try {
    const response = await fetch(url);
    return response.ok ? await response.json() : undefined;
  } catch {
    return undefined;
  }
}

let kafkaEnv;
let context;
const truth = {};
const run = {};

before(async () => {
  assert.ok(BIN && fs.existsSync(BIN), "KTA_BIN names the built kafka-test-app binary");
  fs.mkdirSync(OUT, { recursive: true });
  execFileSync(path.join(ROOT, "scripts/kafka"), ["up", "--dir", KAFKA_DIR, "--nodes", "1", "--owner", String(process.pid)], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  kafkaEnv = Object.fromEntries(
    fs
      .readFileSync(path.join(KAFKA_DIR, "env"), "utf8")
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  context = await chromium.launchPersistentContext(path.join(WORK, "chromium-profile"), {
    executablePath: process.env.KTA_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  // The broker's log stays beside the screenshots, for a failure's post-mortem.
  const log = path.join(KAFKA_DIR, "node1", "server.log");
  if (fs.existsSync(log)) fs.copyFileSync(log, path.join(OUT, "kafka-server.log"));
  try {
    execFileSync(path.join(ROOT, "scripts/kafka"), ["down", "--dir", KAFKA_DIR], { stdio: "ignore" });
  } catch {
    // --owner takes it down with this process anyway.
  }
  fs.rmSync(WORK, { recursive: true, force: true });
});

/** Opens `url` in a fresh tab that records console errors, page errors and every request. */
async function open(url) {
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("request", (request) => requests.push(request.url()));
  await page.goto(url);
  return { page, errors, requests };
}

/** What a page draws: verdict, totals, series, gaps, latency marks, bars, table, embedded JSON. */
async function drawn(page) {
  return page.evaluate(() => {
    const attr = (el, name) => el.getAttribute(name);
    const chart = (id) => {
      const svg = document.getElementById(id);
      if (!svg) return null;
      const series = {};
      for (const line of svg.querySelectorAll("polyline.series")) {
        const counts = attr(line, "data-counts").split(" ").map(Number);
        (series[attr(line, "data-series")] ??= []).push({ name: attr(line, "data-name"), counts });
      }
      const gaps = [...svg.querySelectorAll("g.gapmark")].map((g) => ({
        from: Number(attr(g, "data-from")),
        to: Number(attr(g, "data-to")),
        seconds: Number(attr(g, "data-seconds")),
        origins: Number(attr(g, "data-origins")),
      }));
      return { start: Number(attr(svg, "data-start")), step: Number(attr(svg, "data-step")), series, gaps };
    };
    return {
      verdict: document.getElementById("verdict")?.getAttribute("data-verdict"),
      totals: Object.fromEntries([...document.querySelectorAll(".num")].map((n) => [attr(n, "data-key"), Number(attr(n, "data-value"))])),
      fleet: chart("rate-fleet"),
      perOrigin: chart("rate-origins"),
      latency: Object.fromEntries(
        [...document.querySelectorAll("svg.latency")].map((svg) => [
          attr(svg, "data-key"),
          Object.fromEntries([...svg.querySelectorAll("g.mark")].map((m) => [attr(m, "data-quantile"), Number(attr(m, "data-ms"))])),
        ]),
      ),
      bars: [...document.querySelectorAll("#origins-chart g.origin")].map((g) => ({
        origin: attr(g, "data-origin"),
        expected: attr(g, "data-expected"),
        count: Number(attr(g, "data-count")),
        lost: Number(attr(g, "data-lost")),
      })),
      rows: [...document.querySelectorAll("#origin-table tbody tr")].map((tr) => ({
        origin: tr.cells[0].textContent,
        expected: tr.cells[1].getAttribute("data-v"),
        count: Number(tr.cells[2].getAttribute("data-v")),
      })),
      json: JSON.parse(document.getElementById("json-text").textContent),
      scripts: document.scripts.length,
      pwned: window.__pwned,
      updates: Number(document.body.getAttribute("data-updates")),
    };
  });
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

/** The stretch of zeros of `counts` (on `chart`'s time axis) around the time `at_ms`: [from, to). */
function zerosAround(chart, counts, at_ms) {
  const slot = Math.floor((at_ms / 1000 - chart.start) / chart.step);
  assert.equal(counts[slot], 0, `no events in the middle of the stop (bucket ${slot}): ${counts.join(" ")}`);
  let from = slot;
  let to = slot;
  while (from > 0 && counts[from - 1] === 0) from--;
  while (to < counts.length && counts[to] === 0) to++;
  return { from, to };
}

/** The stretch of zeros in the middle of the stop lies where the broker was stopped, and a gap
 * mark covers it. (Other stretches, if the machine hiccups elsewhere, are not this test's.) */
function assertStopShown(chart, counts, what) {
  const zeros = zerosAround(chart, counts, (truth.stoppedAt + truth.resumedAt) / 2);
  const seconds = (zeros.to - zeros.from) * chart.step;
  const zeroFrom = chart.start + zeros.from * chart.step;
  const zeroTo = chart.start + zeros.to * chart.step;
  console.log(`${what}: ${seconds} s of zeros from ${new Date(zeroFrom * 1000).toISOString()}; broker stopped ${new Date(truth.stoppedAt).toISOString()} to ${new Date(truth.resumedAt).toISOString()}`);
  // Counts are sampled about once a second (later on a busy machine): the zeros begin within a
  // few seconds of the stop and end within a few of the resumption.
  assert.ok(seconds >= STOPPED_MS / 1000 - 4 && seconds <= STOPPED_MS / 1000 + 8, `${what}: a ${seconds} s stretch of zeros`);
  assert.ok(Math.abs(zeroFrom * 1000 - truth.stoppedAt) <= 4000, `${what}: zeros begin when the broker stopped`);
  assert.ok(zeroTo * 1000 >= truth.resumedAt - 2000 && zeroTo * 1000 <= truth.resumedAt + 8000, `${what}: zeros end after it resumed`);
  return zeros;
}

test("a 3-origin run with the broker stopped for 20 s, seen live and in the reports", async (t) => {
  const consumerPort = await freePort();
  const producerPort = await freePort();
  const consumeHtml = path.join(WORK, "consume.html");
  const consumer = start(
    ["consume", "--topic", TOPIC, "-c", GROUP_PREFIX, "--output", "json", "--html", consumeHtml],
    { ...kafkaEnv, KTA_HTTP_ADDR: `127.0.0.1:${consumerPort}` },
  );
  const producers = ORIGINS.map((origin, i) =>
    start(
      ["produce", "--topic", TOPIC, "--partitions", "3", "--rate", String(RATE), "--duration", `${DURATION_S}s`, "--flush-timeout", "60s", "--origin", origin, "--output", "json"],
      i === 0 ? { ...kafkaEnv, KTA_HTTP_ADDR: `127.0.0.1:${producerPort}` } : kafkaEnv,
    ),
  );
  const producing = Date.now();
  // The fault, once the live pages are checked while producing: the only broker frozen for 20 s.
  const freeze = async () => {
    await sleep(Math.max(0, producing + STOP_AFTER_MS - Date.now()));
    assert.ok(Date.now() - producing <= STOP_BY_MS, "the live pages were checked in time for the stop");
    execFileSync(path.join(ROOT, "scripts/kafka"), ["stop", "1", "--dir", KAFKA_DIR]);
    truth.stoppedAt = Date.now();
    await sleep(STOPPED_MS);
    execFileSync(path.join(ROOT, "scripts/kafka"), ["cont", "1", "--dir", KAFKA_DIR]);
    truth.resumedAt = Date.now();
  };

  await t.test("the consumer's live page updates every second and draws its report", async () => {
    const { page, errors, requests } = await open(`http://127.0.0.1:${consumerPort}/`);
    const first = await until("a first update with events", 15_000, async () => {
      const d = await drawn(page);
      return d.updates >= 1 && d.totals.consumed > 0 && d;
    });
    const later = await until("three more updates", 10_000, async () => {
      const d = await drawn(page);
      return d.updates >= first.updates + 3 && d;
    });
    assert.ok(later.totals.consumed > first.totals.consumed, `consumed grew: ${first.totals.consumed} -> ${later.totals.consumed}`);
    // What is drawn is the report it was drawn from.
    assert.equal(later.totals.consumed, later.json.consumed);
    assert.equal(later.scripts, 1);
    assert.deepEqual(errors, []);
    assert.ok(requests.every((url) => url.startsWith(`http://127.0.0.1:${consumerPort}/`)), requests.join(" "));
    await page.close();
  });

  await t.test("a producer's live page draws its rate against the target", async () => {
    const { page, errors, requests } = await open(`http://127.0.0.1:${producerPort}/`);
    const d = await until("an update with events sent", 10_000, async () => {
      const d = await drawn(page);
      return d.updates >= 1 && d.totals.sent > 0 && d;
    });
    assert.equal(d.totals.sent, d.json.sent);
    assert.equal(d.totals.acked, d.json.acked);
    assert.equal(sum(d.fleet.series.sent[0].counts), d.json.series.sent.counts.reduce((a, b) => a + b, 0));
    // The target line is the rate asked for, in every bucket of the run.
    assert.ok(d.fleet.series.target[0].counts.every((c) => c === RATE * d.fleet.step));
    assert.deepEqual(errors, []);
    assert.ok(requests.every((url) => url.startsWith(`http://127.0.0.1:${producerPort}/`)), requests.join(" "));
    await page.screenshot({ path: path.join(OUT, "live-producer.png"), fullPage: true });
    console.log(`screenshot: ${path.join(OUT, "live-producer.png")}`);
    await page.close();
  });

  await freeze();
  const produced = await Promise.all(producers.map((p) => p.done));
  for (const [i, p] of produced.entries()) {
    assert.equal(p.code, 0, `producer ${i}: ${p.stderr}`);
    const report = JSON.parse(p.stdout);
    assert.equal(report.acked, PER_PRODUCER, `producer ${i} acked all it was asked to send`);
    assert.ok(report.longest_ack_gap_s >= 15, `producer ${i} saw the stall: ${report.longest_ack_gap_s} s`);
  }
  const total = PER_PRODUCER * ORIGINS.length;

  await t.test("once all is consumed, the live page draws /report's numbers", async () => {
    await until("the consumer to consume every event", 60_000, async () => (await getJson(`http://127.0.0.1:${consumerPort}/report`))?.consumed === total);
    const { page, errors } = await open(`http://127.0.0.1:${consumerPort}/`);
    const d = await until("an update after everything was consumed", 10_000, async () => {
      const d = await drawn(page);
      return d.updates >= 2 && d;
    });
    const report = await getJson(`http://127.0.0.1:${consumerPort}/report`);
    assert.equal(d.totals.consumed, total);
    assert.equal(report.consumed, total);
    for (const origin of ORIGINS) {
      assert.equal(d.rows.find((r) => r.origin === origin)?.count, report.origins[origin].count, origin);
    }
    assert.equal(sum(d.fleet.series.consumed[0].counts), total);
    assertStopShown(d.fleet, d.fleet.series.consumed[0].counts, "live page, consumed per second");
    assert.deepEqual(errors, []);
    await page.screenshot({ path: path.join(OUT, "live-consumer.png"), fullPage: true });
    console.log(`screenshot: ${path.join(OUT, "live-consumer.png")}`);
    await page.close();
  });

  consumer.child.kill("SIGTERM");
  const consumed = await consumer.done;
  assert.equal(consumed.code, 0, consumed.stderr);
  const consumeReport = JSON.parse(consumed.stdout);
  run.consumeReport = consumeReport;

  await t.test("consume --html: a self-contained page holding the consumer's numbers", async () => {
    const { page, errors, requests } = await open(`file://${consumeHtml}`);
    const d = await drawn(page);
    assert.deepEqual(d.json, consumeReport, "the page embeds the JSON report the consumer printed");
    assert.equal(d.verdict, consumeReport.verdict);
    assert.equal(d.totals.consumed, total);
    assert.equal(sum(d.fleet.series.consumed[0].counts), total);
    assertStopShown(d.fleet, d.fleet.series.consumed[0].counts, "consume --html, consumed per second");
    for (const q of ["p50", "p99", "p999", "max"]) {
      assert.equal(d.latency.latency_ms[q], consumeReport.latency_ms[q], q);
    }
    assert.deepEqual(errors, []);
    assert.ok(requests.every((url) => url.startsWith("file://")), requests.join(" "));
    await page.screenshot({ path: path.join(OUT, "consume.png"), fullPage: true });
    console.log(`screenshot: ${path.join(OUT, "consume.png")}`);
    await page.close();
  });

  const verifyHtml = path.join(WORK, "verify.html");
  const verified = await start(
    ["verify", "--topic", TOPIC, "--group", `${GROUP_PREFIX}1`, "--output", "json", "--html", verifyHtml],
    kafkaEnv,
  ).done;
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const verifyReport = JSON.parse(verified.stdout);

  await t.test("verify --html: the fleet's verdict, rates, gap, latency and origins", async () => {
    const { page, errors, requests } = await open(`file://${verifyHtml}`);
    const d = await drawn(page);
    assert.deepEqual(d.json, verifyReport, "the page embeds the JSON report verify printed");
    assert.equal(d.verdict, "pass");
    assert.equal(verifyReport.verdict, "pass");
    assert.equal(d.totals.consumed, verifyReport.consumed);
    assert.equal(d.totals.consumed, total);
    assert.equal(d.totals.expected, total);
    for (const key of ["lost", "duplicates", "out_of_order", "beyond_sent", "truncated"]) {
      assert.equal(d.totals[key], verifyReport[key], key);
    }
    // Every origin, expected against seen, as the JSON says (and as the test sent).
    assert.equal(d.rows.length, ORIGINS.length);
    assert.equal(d.bars.length, ORIGINS.length);
    for (const origin of ORIGINS) {
      const o = verifyReport.origins[origin];
      assert.equal(o.count, PER_PRODUCER, origin);
      assert.equal(o.expected, PER_PRODUCER, origin);
      const row = d.rows.find((r) => r.origin === origin);
      assert.deepEqual(row, { origin, expected: String(o.expected), count: o.count });
      const bar = d.bars.find((b) => b.origin === origin);
      assert.deepEqual(bar, { origin, expected: String(o.expected), count: o.count, lost: o.lost });
    }
    // Latency percentiles as the JSON report has them (merged histograms).
    for (const q of ["p50", "p99", "p999", "max"]) {
      assert.equal(d.latency.ack_latency_ms[q], verifyReport.ack_latency_ms[q], `ack ${q}`);
      assert.equal(d.latency["group.latency_ms"][q], verifyReport.group.latency_ms[q], `end-to-end ${q}`);
    }
    // The acknowledged-per-second series adds up to every run's acknowledgements, shows the
    // stop as a stretch of zeros, and the page marks it.
    const runs = Object.values(verifyReport.origins).flatMap((o) => Object.values(o.runs));
    assert.equal(runs.length, ORIGINS.length);
    const acked = d.fleet.series.acked[0].counts;
    assert.equal(sum(acked), sum(runs.map((r) => sum(r.series.acked.counts))));
    assert.equal(sum(acked), total);
    assert.equal(sum(d.fleet.series.sent[0].counts), total);
    assert.ok(d.fleet.series.target[0].counts.some((c) => c === RATE * ORIGINS.length * d.fleet.step), "the fleet's target: 3 x 20/s");
    const zeros = assertStopShown(d.fleet, acked, "verify --html, acknowledged per second");
    const mark = d.fleet.gaps.find((g) => g.from <= zeros.from && g.to >= zeros.to);
    assert.ok(mark, `a gap mark covers buckets ${zeros.from}..${zeros.to}: ${JSON.stringify(d.fleet.gaps)}`);
    assert.ok(mark.from >= zeros.from - 2 && mark.to <= zeros.to + 2, JSON.stringify(mark));
    assert.equal(mark.origins, ORIGINS.length, "every origin stalled");
    assert.equal(d.perOrigin.series["origin-acked"].length, ORIGINS.length);
    // The origin with a <script> tag is text on the page, never a script.
    assert.equal(d.scripts, 1);
    assert.equal(d.pwned, undefined);
    assert.deepEqual(errors, []);
    assert.ok(requests.every((url) => url.startsWith("file://")), requests.join(" "));
    await page.screenshot({ path: path.join(OUT, "report.png"), fullPage: true });
    console.log(`screenshot: ${path.join(OUT, "report.png")}`);
    // Sorting the table by count works and raises no error.
    await page.click("#origin-table th:nth-child(3)");
    assert.deepEqual(errors, []);
    await page.close();
  });
});
