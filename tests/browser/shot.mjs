import { chromium } from 'playwright-core';
const [,, role, width, out, path] = process.argv;
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const p = await b.newPage({ viewport: { width: Number(width), height: 900 } });
await p.goto('http://127.0.0.1:8099/login');
await p.fill('input[name=email]', `${role}@demo.rapport.test`);
await p.fill('input[name=password]', 'rapport-demo-2026');
await p.click('button[type=submit]');
await p.waitForLoadState('networkidle');
if (path) { await p.goto('http://127.0.0.1:8099' + path); await p.waitForLoadState('networkidle'); }
await p.screenshot({ path: out, fullPage: true });
await b.close();
