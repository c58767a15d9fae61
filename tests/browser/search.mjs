// Signs in, types a misspelt name in the header search box, waits for the suggestion, picks
// it with the keyboard (arrow down, Enter) and checks the client's profile opened.
// Arguments: base URL, e-mail, password, query, expected name, and optionally a name that
// must not appear (another rep's client). Exits non-zero on failure.
import { chromium } from "playwright-core";

const [base, email, password, query, name, absent] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  const box = page.locator("#global-search");
  // The indexer runs in the background: retype until the suggestion shows (at most 20 s).
  const hit = page.locator("#search-results .search-hit", { hasText: name });
  for (let i = 0; i < 40 && !(await hit.count()); i++) {
    await box.fill("");
    await box.pressSequentially(query, { delay: 20 });
    await page.waitForTimeout(500);
  }
  await hit.first().waitFor({ timeout: 2000 });
  if (absent && (await page.locator("#search-results .search-hit", { hasText: absent }).count())) {
    throw new Error(`${absent} is shown to someone who may not see it`);
  }
  const marked = await hit.first().locator("mark").count();
  if (marked < 2) throw new Error(`expected both words marked, got ${marked}`);
  await box.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/clients\/[0-9a-f-]+$/, { timeout: 10000 });
  const title = await page.locator("h1").first().textContent();
  if (!title.includes(name)) throw new Error(`opened ${title}, not ${name}`);
  console.log("opened", page.url());
} finally {
  await browser.close();
}
