// First load of Agentry's pages in Chromium, cache off: the bytes transferred and the
// requests made until the page is hydrated (`html[data-hydrated]`), and the time to
// hydrated. The baseline, measured in the same run, is the same page with JavaScript off
// (the server-rendered page fully loaded): the hydrated time is reported against it.
//
// Run by the bench binary (`cargo run --release -p bench`); by hand:
//   BASE=http://127.0.0.1:3000 COOKIE='access=…; refresh=…' PAGES=/login,/agents node end2end/bench/first-load.mjs
// Prints one JSON object: { "<path>": { kb, requests, hydrated_ms, nojs_ms, runs } }.
import { chromium } from "@playwright/test";

const base = process.env.BASE;
const cookie = process.env.COOKIE ?? "";
const pages = (process.env.PAGES ?? "/login").split(",").filter(Boolean);
const runs = Number(process.env.RUNS ?? 5);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic"],
});

async function context(js, signedIn) {
  const ctx = await browser.newContext({ javaScriptEnabled: js });
  if (signedIn && cookie) {
    const url = new URL(base);
    await ctx.addCookies(
      cookie.split(";").map((c) => {
        const [name, ...rest] = c.trim().split("=");
        return { name, value: rest.join("="), domain: url.hostname, path: "/" };
      }),
    );
  }
  return ctx;
}

async function once(path, js) {
  const ctx = await context(js, path !== "/login");
  const page = await ctx.newPage();
  const cdp = await ctx.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  let bytes = 0;
  let requests = 0;
  let counting = true;
  cdp.on("Network.requestWillBeSent", () => {
    if (counting) requests += 1;
  });
  cdp.on("Network.loadingFinished", (e) => {
    if (counting) bytes += e.encodedDataLength;
  });
  await page.addInitScript(() => {
    // Noted when the attribute appears, however late this script runs.
    const seen = () => {
      if (!window.__hydratedAt && document.documentElement?.hasAttribute("data-hydrated")) {
        window.__hydratedAt = performance.now();
      }
    };
    const watch = () => {
      seen();
      new MutationObserver(seen).observe(document.documentElement, { attributes: true });
    };
    if (document.documentElement) watch();
    else document.addEventListener("readystatechange", watch, { once: true });
  });
  await page.goto(`${base}${path}`, { waitUntil: js ? "domcontentloaded" : "load" });
  let ms;
  if (js) {
    await page.locator("html[data-hydrated]").waitFor({ state: "attached", timeout: 30_000 });
    ms = await page.evaluate(() => window.__hydratedAt);
    // What was still arriving when hydration finished counts too.
    await page.waitForTimeout(50);
  } else {
    ms = await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
  }
  counting = false;
  await ctx.close();
  return { bytes, requests, ms };
}

const out = {};
for (const path of pages) {
  const hydrated = [];
  const nojs = [];
  // Alternating, so a slow spell of the machine hits both alike.
  for (let i = 0; i < runs; i++) {
    hydrated.push(await once(path, true));
    nojs.push(await once(path, false));
  }
  out[path] = {
    kb: Math.round(median(hydrated.map((r) => r.bytes)) / 102.4) / 10,
    requests: median(hydrated.map((r) => r.requests)),
    hydrated_ms: Math.round(median(hydrated.map((r) => r.ms))),
    hydrated_ms_all: hydrated.map((r) => Math.round(r.ms)),
    nojs_ms: Math.round(median(nojs.map((r) => r.ms))),
    nojs_ms_all: nojs.map((r) => Math.round(r.ms)),
    runs,
  };
}
await browser.close();
console.log(JSON.stringify(out));
