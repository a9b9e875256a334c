// Summarise one run of the MCP conformance suite (`conformance server ...`).
//
// Used by scripts/conformance.sh; runs on the Node binary that script installs.
//
//   node conformance-report.mjs --label L --log run.log --results DIR \
//        [--allowed-fail-prefix tasks-] [--json OUT.json]
//
// Sources, in order of preference:
//   1. DIR/server-<scenario>-<timestamp>/checks.json, written by `-o DIR`
//      (machine readable; one directory per scenario).
//   2. The "=== SUMMARY ===" block in the suite's stdout, which also covers
//      scenarios that threw before writing checks.json.
// Counting matches the suite itself: passed = checks with status SUCCESS,
// failed = checks with status FAILURE (WARNING/INFO/SKIPPED are not counted).
//
// Prints a human-readable summary to stderr and shell assignments to stdout:
//   PASSED=.. FAILED=.. WARNINGS=.. OTHER_FAILED=.. SCENARIOS=.. EXPECTED=..
//   COMPLETE=0|1 SUITE_PASSED=.. SUITE_FAILED=..
// OTHER_FAILED counts FAILURE checks in scenarios whose name does not start
// with --allowed-fail-prefix (when one is given; otherwise equal to FAILED).

import fs from "node:fs";
import path from "node:path";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${a}`);
    out[a.slice(2)] = argv[++i];
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const label = args.label ?? "run";
const allowedPrefix = args["allowed-fail-prefix"] ?? "";

let log = "";
try {
  log = fs.readFileSync(args.log, "utf8");
} catch {
  // A missing log is reported as an incomplete run below.
}

// --- stdout ---------------------------------------------------------------
// "Running active suite (31 scenarios) against URL"
// "Running requirements 2026-07-28 (50 scenarios) against URL"
const header = log.match(/^Running (.+?) \((\d+) scenarios\) against (\S+)/m);
const expected = header ? Number(header[2]) : null;

const stdoutScenarios = new Map();
let suiteTotal = null;
const summaryIdx = log.lastIndexOf("=== SUMMARY ===");
if (summaryIdx >= 0) {
  const tail = log.slice(summaryIdx);
  for (const m of tail.matchAll(/^[✓✗] (\S+): (\d+) passed, (\d+) failed/gmu)) {
    stdoutScenarios.set(m[1], { passed: Number(m[2]), failed: Number(m[3]) });
  }
  const t = tail.match(/^Total: (\d+) passed, (\d+) failed/m);
  if (t) suiteTotal = { passed: Number(t[1]), failed: Number(t[2]) };
}

// --- checks.json ----------------------------------------------------------
const fileScenarios = new Map();
const tsSuffix = /-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
if (args.results && fs.existsSync(args.results)) {
  for (const ent of fs.readdirSync(args.results, { withFileTypes: true })) {
    if (!ent.isDirectory() || !ent.name.startsWith("server-")) continue;
    const name = ent.name.replace(/^server-/, "").replace(tsSuffix, "");
    const file = path.join(args.results, ent.name, "checks.json");
    let checks;
    try {
      checks = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      continue; // fall back to stdout for this scenario
    }
    if (!Array.isArray(checks)) continue;
    // A scenario directory should be unique per run; if not, keep the latest.
    const prev = fileScenarios.get(name);
    if (prev && prev.dir > ent.name) continue;
    fileScenarios.set(name, { dir: ent.name, checks });
  }
}

// --- merge ----------------------------------------------------------------
const order = [...stdoutScenarios.keys()];
for (const k of [...fileScenarios.keys()].sort()) {
  if (!stdoutScenarios.has(k)) order.push(k);
}

const scenarios = [];
for (const name of order) {
  const f = fileScenarios.get(name);
  const s = stdoutScenarios.get(name);
  if (f) {
    const st = (x) => f.checks.filter((c) => c.status === x);
    scenarios.push({
      name,
      source: "checks.json",
      passed: st("SUCCESS").length,
      failed: st("FAILURE").length,
      warnings: st("WARNING").length,
      failing: st("FAILURE").map((c) => ({
        id: c.id,
        name: c.name,
        message: c.errorMessage ?? c.description ?? "",
      })),
    });
  } else {
    scenarios.push({
      name,
      source: "stdout",
      passed: s.passed,
      failed: s.failed,
      warnings: 0,
      failing:
        s.failed > 0
          ? [{ id: name, name: "(no checks.json; see log)", message: "" }]
          : [],
    });
  }
}

const sum = (k, list = scenarios) => list.reduce((a, s) => a + s[k], 0);
const passed = sum("passed");
const failed = sum("failed");
const warnings = sum("warnings");
const other = allowedPrefix
  ? scenarios.filter((s) => !s.name.startsWith(allowedPrefix))
  : scenarios;
const otherFailed = sum("failed", other);

const problems = [];
if (!header) problems.push("suite did not print its 'Running ... (N scenarios)' header");
if (suiteTotal === null) problems.push("suite did not print a SUMMARY/Total (crashed or killed?)");
if (expected !== null && scenarios.length < expected)
  problems.push(`only ${scenarios.length} of ${expected} scenarios reported`);
if (suiteTotal && (suiteTotal.passed !== passed || suiteTotal.failed !== failed))
  problems.push(
    `suite printed Total ${suiteTotal.passed}/${suiteTotal.failed}, checks.json gives ${passed}/${failed}`,
  );
const complete =
  header !== null && suiteTotal !== null && (expected === null || scenarios.length >= expected);

// --- output ---------------------------------------------------------------
const err = (s) => process.stderr.write(s + "\n");
err(`${label}: ${passed} passed / ${failed} failed` +
  (warnings ? ` (${warnings} warnings)` : "") +
  (allowedPrefix && failed !== otherFailed
    ? ` [${otherFailed} outside ${allowedPrefix}*]`
    : ""));
for (const s of scenarios) {
  if (allowedPrefix && s.name.startsWith(allowedPrefix)) {
    // Tolerated failures: one compact line per scenario.
    if (s.failing.length)
      err(`    fail (tolerated) ${s.name}: ${s.failing.map((c) => c.name).join(", ")}`);
    continue;
  }
  for (const c of s.failing) {
    const msg = c.message ? ` — ${String(c.message).split("\n")[0].slice(0, 160)}` : "";
    err(`    FAIL ${s.name} / ${c.name} (${c.id})${msg}`);
  }
}
for (const p of problems) err(`    WARNING: ${p}`);

if (args.json) {
  fs.writeFileSync(
    args.json,
    JSON.stringify(
      { label, passed, failed, warnings, otherFailed, allowedPrefix, expected,
        complete, suiteTotal, problems, scenarios },
      null,
      2,
    ) + "\n",
  );
}

const out = {
  PASSED: passed,
  FAILED: failed,
  WARNINGS: warnings,
  OTHER_FAILED: otherFailed,
  SCENARIOS: scenarios.length,
  EXPECTED: expected ?? "",
  COMPLETE: complete ? 1 : 0,
  SUITE_PASSED: suiteTotal?.passed ?? "",
  SUITE_FAILED: suiteTotal?.failed ?? "",
};
for (const [k, v] of Object.entries(out)) process.stdout.write(`${k}=${v}\n`);
