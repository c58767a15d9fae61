// Signs in and drags the named deal from one board column to another in headless
// Chromium, then waits for the server's confirmation toast. Arguments: base URL,
// e-mail, password, deal name, target stage name. Exits non-zero on any failure.
import { chromium } from "playwright-core";

const [base, email, password, deal, target] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/pipeline`);
  const card = page.locator(".deal-card", { hasText: deal });
  const column = page.locator("section.column", { has: page.locator("h2", { hasText: target }) }).locator("ol.cards-list");
  await card.dragTo(column);
  await page.locator(".toast", { hasText: `to ${target}` }).waitFor({ timeout: 10000 });
  const inTarget = await column.locator(".deal-card", { hasText: deal }).count();
  if (inTarget !== 1) throw new Error(`the card is not in ${target} after the drop`);
  console.log("moved");
} finally {
  await browser.close();
}
