import { chromium } from "playwright-core";
const base = "http://127.0.0.1:8099";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const addr = process.argv[2], client = process.argv[3];
try {
  for (const [w, h, tag] of [[1280, 900, "desk"]]) {
    const page = await browser.newPage({ viewport: { width: w, height: h } });
    page.on("pageerror", (e) => console.error("pageerror:", e.message));
    await page.goto(`${base}/login`);
    await page.fill("input[name=email]", "sales.rep@demo.rapport.test");
    await page.fill("input[name=password]", "rapport-demo-2026");
    await page.click("button[type=submit]");
    await page.waitForURL(`${base}/`);
    await page.goto(`${base}/mail/mailboxes`);
    if (!(await page.content()).includes(addr)) {
    await page.click("#connect summary");
    await page.fill("input[name=name]", "My mail");
    await page.fill("input[name=address]", addr);
    await page.fill("input[name=username]", addr);
    await page.fill("input[name=password]", "secret");
    await page.fill("input[name=imapHost]", "127.0.0.1");
    await page.fill("input[name=imapPort]", "11143");
    await page.selectOption("select[name=imapSecurity]", "none");
    await page.fill("input[name=smtpHost]", "127.0.0.1");
    await page.fill("input[name=smtpPort]", "15587");
    await page.selectOption("select[name=smtpSecurity]", "none");
    await page.click("#connect button[type=submit]");
    await page.waitForTimeout(800);
    }
    await page.click("button:has-text('Test')");
    await page.waitForTimeout(1500);
    await page.screenshot({ path: `/tmp/shot-mailboxes-${tag}.png`, fullPage: true });
    await page.goto(`${base}/clients/${client}/email`);
    await page.fill("input[name=subject]", "Our proposal");
    await page.fill("textarea[name=text]", "Hello,\n\nplease find our proposal below.\n\nBest regards");
    await page.screenshot({ path: `/tmp/shot-compose-${tag}.png`, fullPage: true });
    await page.click("#compose-page form button[type=submit]");
    await page.waitForTimeout(6000);
    await page.goto(`${base}/mail`);
    await page.screenshot({ path: `/tmp/shot-mail-${tag}.png`, fullPage: true });
    const first = page.locator(".mail-link").first();
    await first.click();
    await page.waitForTimeout(800);
    await page.screenshot({ path: `/tmp/shot-message-${tag}.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/mail`);
    await page.screenshot({ path: `/tmp/shot-mail-phone.png`, fullPage: true });
  }
} finally { await browser.close(); }
