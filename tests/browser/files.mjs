// Files in the console: a file dropped on a deal's Files card is uploaded and listed; a file
// attached to a call from the client's timeline shows on that call; the client list's
// "Export Excel" downloads a workbook.
// Arguments: base URL, e-mail, password, deal id, client id.
import { chromium } from "playwright-core";

const [base, email, password, deal, client] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.on("pageerror", (e) => console.error("pageerror:", e.message));
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/`);

  // Drop a file on the deal's Files card, as a user dragging it from the desktop.
  await page.goto(`${base}/opportunities/${deal}`);
  const zone = page.locator("#files [data-dropzone]");
  await zone.waitFor();
  const dt = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(["%PDF-1.4 the brief"], "brief.pdf", { type: "application/pdf" }));
    return d;
  });
  await zone.dispatchEvent("dragover", { dataTransfer: dt });
  await zone.dispatchEvent("drop", { dataTransfer: dt });
  await page.waitForURL(/attached=1/);
  await page.locator("#files .file-list", { hasText: "brief.pdf" }).waitFor({ timeout: 5000 });
  console.log("dropped on the deal");

  // Attach a file to the call on the client's timeline.
  await page.goto(`${base}/clients/${client}`);
  const call = page.locator("#timeline .interaction", { hasText: "Kick-off call" });
  await call.locator("details.attach summary").click();
  await call.locator("input[type=file]").setInputFiles({ name: "minutes.txt", mimeType: "text/plain", buffer: Buffer.from("We agreed.") });
  await call.locator("form button[type=submit]").click();
  await page.waitForURL(/attached=1/);
  await page.locator("#timeline .interaction", { hasText: "Kick-off call" }).locator(".file-chip", { hasText: "minutes.txt" }).waitFor({ timeout: 5000 });
  console.log("attached to the call");

  // The client list exports to Excel.
  await page.goto(`${base}/clients`);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator("a", { hasText: "Export Excel" }).click(),
  ]);
  const name = download.suggestedFilename();
  if (!name.endsWith(".xlsx")) throw new Error(`downloaded ${name}`);
  const path = await download.path();
  const head = (await import("node:fs")).readFileSync(path).subarray(0, 2).toString();
  if (head !== "PK") throw new Error("the download is not a workbook");
  console.log("exported", name);
} finally {
  await browser.close();
}
