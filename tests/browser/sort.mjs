// The client list sorted from its column headers, on a desktop screen: a click on "Status"
// lists by status, a second click reverses it, and neither asks anything (the bulk form
// around the table once made every header click ask "Apply this to the selected clients?").
// Prints the names in order after each click.
// Arguments: base URL, e-mail, password.
import { chromium } from "playwright-core";

const [base, email, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  page.on("dialog", async (d) => {
    console.log("dialog:", d.message());
    await d.dismiss();
  });
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/clients`);
  const names = () => page.locator("#client-results tbody tr")
    .evaluateAll((rows) => rows.map((r) => r.querySelector("td a")?.textContent.trim()));
  for (const [want, state] of [["sort=status", "sort-asc"], ["sort=-status", "sort-desc"]]) {
    await page.locator('#client-results th a:has-text("Status")').click();
    await page.waitForFunction((w) => location.search.includes(w), want, { timeout: 5000 });
    await page.locator(`#client-results th a.${state}:has-text("Status")`).waitFor({ timeout: 5000 });
    console.log(`${want}: ${(await names()).join(", ")}`);
  }
} finally {
  await browser.close();
}
