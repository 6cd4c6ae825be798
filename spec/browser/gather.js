#!/usr/bin/env node
// node spec/browser/gather.js URL SCREENSHOT_PATH
//
// Opens the demo page (examples/nginx/html) at URL in Debian's Chromium,
// headless, waits until the page has gathered ICE candidates through every
// server it got from /ice-servers (body[data-done="1"]), saves a full-page
// screenshot to SCREENSHOT_PATH and prints JSON.stringify(window.iceResults)
// on stdout; the page's text (innerText) goes to SCREENSHOT_PATH with .txt
// for .png.  Exit 0 on success; 1 with a one-line message on stderr when the
// page does not finish in time, the browser cannot start or anything else
// fails; 2 for bad usage.  Every step is bounded and the browser is always
// closed (Playwright also kills it if this process is stopped).
//
// Environment: CHROMIUM (default /usr/bin/chromium), GATHER_TIMEOUT_MS
// (default 30000: how long the page may take once loaded).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
const LAUNCH_TIMEOUT_MS = 15000;
const LOAD_TIMEOUT_MS = 10000;
const DONE_TIMEOUT_MS = Number(process.env.GATHER_TIMEOUT_MS) || 30000;
const SCREENSHOT_TIMEOUT_MS = 10000;
const EVAL_TIMEOUT_MS = 5000;
const CLOSE_TIMEOUT_MS = 5000;
// Past this the process exits whatever it is waiting for (exit handlers of
// Playwright kill the browser's process group on the way out).
const WATCHDOG_MS = LAUNCH_TIMEOUT_MS + LOAD_TIMEOUT_MS + DONE_TIMEOUT_MS
  + SCREENSHOT_TIMEOUT_MS + 2 * EVAL_TIMEOUT_MS + CLOSE_TIMEOUT_MS + 5000;

const ARGS = [
  "--no-sandbox", // root in a container: the setuid/namespace sandbox is not available
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
  // WebRTC may use the loopback interface too: without it Chromium gathers
  // nothing at all on a machine whose only interface is lo (the TURN
  // server of the spec is on 127.0.0.1 either way).
  "--allow-loopback-in-peer-connection",
  // Host candidates with the real addresses, not <uuid>.local names (Chromium
  // hides them behind mDNS unless the page has camera/microphone access).
  // The last --disable-features wins, so this list repeats the parts of
  // Playwright's own list that matter in a headless test.
  "--disable-features=WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,"
    + "DialMediaRouteProvider,OptimizationHints,HttpsUpgrades,PaintHolding,"
    + "GlobalMediaControls,LensOverlay",
  // No --force-webrtc-ip-handling-policy: the default policy lets WebRTC use
  // every interface with non-proxied UDP, which TURN over UDP needs.
];

function fail(message) {
  process.stderr.write(`gather.js: ${String(message).split("\n")[0]}\n`);
  process.exitCode = 1;
}

// A promise bounded in time: rejects with `what` after `ms`.
function bounded(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (after ${ms} ms)`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function main() {
  const [url, shot] = process.argv.slice(2);
  if (!url || !shot) {
    process.stderr.write("usage: node gather.js URL SCREENSHOT_PATH\n");
    process.exitCode = 2;
    return;
  }
  if (!fs.existsSync(EXECUTABLE)) {
    fail(`no Chromium at ${EXECUTABLE} (apt-get install chromium, or make deps)`);
    return;
  }
  let chromium;
  try {
    ({ chromium } = require("playwright-core"));
  } catch (err) {
    fail(`playwright-core is not installed (npm ci --prefix spec/browser): ${err.message}`);
    return;
  }

  const watchdog = setTimeout(() => {
    fail(`gave up after ${WATCHDOG_MS} ms`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "iceservers-chromium-"));
  const profile = path.join(tmp, "profile");
  let context;
  try {
    context = await bounded(chromium.launchPersistentContext(profile, {
      executablePath: EXECUTABLE,
      headless: true,
      args: ARGS,
      timeout: LAUNCH_TIMEOUT_MS,
      // Chromium keeps crash reports and dconf under $HOME/.config whatever
      // the profile: a throwaway home inside the temp folder keeps it there.
      env: { ...process.env, HOME: tmp, XDG_CONFIG_HOME: path.join(tmp, "config"),
             XDG_CACHE_HOME: path.join(tmp, "cache") },
      viewport: { width: 900, height: 300 }, // fullPage: as tall as the page
      deviceScaleFactor: 1,
    }), LAUNCH_TIMEOUT_MS + 2000, "Chromium did not start");
    const page = context.pages()[0] || await context.newPage();
    page.on("pageerror", (err) => process.stderr.write(`page error: ${err.message}\n`));
    page.on("console", (msg) => {
      // The demo has no favicon: the browser's 404 for it is no page error.
      if (msg.type() === "error" && !/\/favicon\.ico$/.test(msg.location().url || "")) {
        process.stderr.write(`console: ${msg.text()}\n`);
      }
    });

    const res = await page.goto(url, { waitUntil: "load", timeout: LOAD_TIMEOUT_MS });
    if (!res || !res.ok()) {
      throw new Error(`GET ${url}: ${res ? "HTTP " + res.status() : "no response"}`);
    }
    let doneError;
    try {
      await page.waitForSelector('body[data-done="1"]', { state: "attached",
        timeout: DONE_TIMEOUT_MS });
    } catch (err) {
      doneError = new Error(`the page did not finish within ${DONE_TIMEOUT_MS} ms`);
    }
    // The screenshot is taken either way: it shows where the page stopped.
    fs.mkdirSync(path.dirname(path.resolve(shot)), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true, timeout: SCREENSHOT_TIMEOUT_MS });
    // The page's text beside it, for the spec: what a person would read.
    const text = await bounded(page.evaluate(() => document.body.innerText), EVAL_TIMEOUT_MS,
      "reading the page text timed out");
    fs.writeFileSync(shot.replace(/(\.png)?$/, ".txt"), text);
    if (doneError) throw doneError;
    const results = await bounded(page.evaluate(() => JSON.stringify(window.iceResults)),
      EVAL_TIMEOUT_MS, "reading window.iceResults timed out");
    if (!results) throw new Error("window.iceResults is not set");
    process.stdout.write(results + "\n");
  } catch (err) {
    fail(err && err.message ? err.message : err);
  } finally {
    if (context) {
      await bounded(context.close(), CLOSE_TIMEOUT_MS, "closing Chromium timed out")
        .catch((err) => fail(err.message));
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    clearTimeout(watchdog);
  }
}

// Exit explicitly: nothing left behind keeps this process alive (stdout and
// stderr are synchronous on pipes and files in Linux, so nothing is lost).
main().then(() => process.exit(process.exitCode || 0), (err) => {
  fail(err && err.message ? err.message : err);
  process.exit(1);
});
