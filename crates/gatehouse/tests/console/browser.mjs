// A headless Chromium (Debian's, driven by playwright-core) that the Rust
// tests steer: one JSON command per line on standard input, one JSON answer
// per line on standard output. The assertions stay in the Rust tests.
//
//   node browser.mjs [--phone]
//   {"do":"goto","url":"http://127.0.0.1:8089/ui/"}  ->  {"ok":true}
//
// Commands: goto, fill, click, wait (selector, optional text), text, count,
// screenshot, eval (an expression), fetch (from the page: same origin,
// with its cookies), hash (the page's location.hash).

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const phone = process.argv.includes("--phone");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});
const context = await browser.newContext(
  phone
    ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
    : { viewport: { width: 1280, height: 860 } },
);
const page = await context.newPage();
const consoleErrors = [];
// Errors of the page's own scripts; an answer's HTTP status (a 401 before
// sign-in, a refusal a test provokes) is not one.
page.on("console", (m) => {
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(String(e)));
page.setDefaultTimeout(15000);

async function run(c) {
  switch (c.do) {
    case "goto":
      await page.goto(c.url, { waitUntil: "load" });
      return null;
    case "fill":
      await page.fill(c.sel, c.value);
      return null;
    case "click":
      await page.click(c.sel);
      return null;
    case "wait": {
      const loc = c.text ? page.locator(c.sel, { hasText: c.text }) : page.locator(c.sel);
      await loc.first().waitFor({ state: "visible", timeout: c.timeout || 15000 });
      return await loc.first().innerText();
    }
    case "gone":
      await page.locator(c.sel).first().waitFor({ state: "detached", timeout: c.timeout || 15000 });
      return null;
    case "text":
      return await page.locator(c.sel).first().innerText();
    case "count":
      return await page.locator(c.sel).count();
    case "screenshot":
      await page.screenshot({ path: c.path, fullPage: !!c.full });
      return null;
    case "eval":
      return await page.evaluate(c.js);
    case "fetch":
      return await page.evaluate(async ({ url, method, headers, body }) => {
        const res = await fetch(url, { method, headers, body, credentials: "same-origin" });
        return { status: res.status, body: await res.text() };
      }, c);
    case "hash":
      return await page.evaluate(() => location.hash);
    case "errors":
      return consoleErrors.splice(0);
    default:
      throw new Error(`unknown command ${c.do}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, value: await run(JSON.parse(line)) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
