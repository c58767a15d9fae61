// The interactions bar on a phone-sized screen: from the client list, "Log" (1), type the
// notes (2), "Log it" (3) — the call is at the top of the client's timeline. For a client who
// opted out of phone calls the warning shows before anything is logged, and logging needs
// the acknowledgement. Counts the interactions and fails above four.
// Arguments: base URL, e-mail, password, client name, opted-out client name.
import { chromium } from "playwright-core";

const [base, email, password, name, optedOut] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/clients`);

  let steps = 0;
  const row = page.locator("tr", { hasText: name });
  await row.locator(".quick-log-link").tap(); steps++;
  await page.waitForURL(/\?log=1$/);
  const notes = page.locator("#quick-content");
  await notes.waitFor();
  if (!(await notes.evaluate((el) => el === document.activeElement))) throw new Error("the notes box is not focused");
  await page.keyboard.type("Agreed to a demo next week"); steps++;
  await page.locator("#quick-log button[type=submit]").tap(); steps++;
  const first = page.locator("#timeline .interaction").first();
  await first.waitFor();
  await page.waitForFunction(() => document.querySelector("#timeline .interaction")?.textContent.includes("Agreed to a demo"), null, { timeout: 5000 });
  const text = await first.textContent();
  if (!text.includes("Call")) throw new Error(`the top entry is not the call: ${text}`);
  if (steps > 4) throw new Error(`took ${steps} interactions`);
  console.log("logged in", steps, "interactions");

  // Opted out of phone: the warning is there before anything is typed.
  await page.goto(`${base}/clients`);
  await page.locator("tr", { hasText: optedOut }).locator(".quick-log-link").tap();
  await page.waitForURL(/\?log=1$/);
  const warning = page.locator(".contact-warning");
  await warning.waitFor({ timeout: 5000 });
  if (!(await warning.textContent()).includes("Calls")) throw new Error("no warning about calls");
  await page.keyboard.type("Tried anyway");
  await page.locator("#quick-log button[type=submit]").tap();
  await page.locator("#quick-log .form-errors").waitFor({ timeout: 5000 });
  await page.locator("input[name=acknowledgeOptOut]").check();
  await page.locator("#quick-content").fill("Tried anyway");
  await page.locator("#quick-log button[type=submit]").tap();
  await page.waitForFunction(() => document.querySelector("#timeline .interaction")?.textContent.includes("Tried anyway"), null, { timeout: 5000 });
  console.log("warned before logging");
} finally {
  await browser.close();
}
