// node dashboard_check.mjs URL SCREENSHOT_DIR: loads the agent's dashboard in
// Debian's headless chromium and prints one JSON object describing what the
// page rendered, which requests it made and which console errors it logged.
// The test script decides what is right; this only looks.
import puppeteer from "puppeteer-core";

const [url, shots] = process.argv.slice(2);
const origin = new URL(url).origin;
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // root in a test namespace: chromium's own sandbox needs a user namespace
  // setuid helper that a CI container does not give it.
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--metrics-recording-only"],
});
const out = { requests: [], foreign: [], console_errors: [], page_errors: [] };
try {
  const page = await browser.newPage();
  page.on("request", r => {
    out.requests.push(r.url());
    if (!r.url().startsWith(origin + "/") && !r.url().startsWith("data:")) out.foreign.push(r.url());
  });
  page.on("console", m => { if (m.type() === "error") out.console_errors.push(m.text()); });
  page.on("pageerror", e => out.page_errors.push(String(e)));
  await page.setViewport({ width: 1200, height: 900 });
  await page.goto(url, { waitUntil: "networkidle0", timeout: 60000 });
  await page.waitForSelector("body[data-loaded='1']", { timeout: 60000 });
  out.rendered = await page.evaluate(() => {
    const texts = sel => [...document.querySelectorAll(sel)].map(e => e.textContent.trim());
    return {
      title: document.title,
      status: document.getElementById("status").textContent,
      job_rows: [...document.querySelectorAll("#jobs tbody tr")].map(tr => [...tr.children].map(td => td.textContent)),
      timeline_rows: texts("#timeline svg text.vol"),
      timeline_marks: [...document.querySelectorAll("#timeline circle.run")].map(c => c.getAttribute("class")),
      mesh_zone_rows: [...document.querySelectorAll("#mesh .zones tbody tr")].map(tr => [...tr.children].map(td => td.textContent)),
      heatmap_cells: document.querySelectorAll("#mesh svg.heatmap rect").length,
      mail_headings: texts("#mail h3"),
      mail_findings: [...document.querySelectorAll("#mail .findings tbody tr")].map(tr => [...tr.children].map(td => td.textContent)),
      history_rows: document.querySelectorAll("#history tbody tr").length,
    };
  });
  await page.screenshot({ path: `${shots}/dashboard-desktop.png`, fullPage: true });
  // A phone: the page must still fit its width (tables scroll inside their boxes).
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await new Promise(r => setTimeout(r, 300));
  out.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: `${shots}/dashboard-phone.png`, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
