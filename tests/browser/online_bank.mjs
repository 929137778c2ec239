// The Online Bank story in a real browser (Debian's chromium driven by playwright-core), as a
// customer would walk it: the demo app, the bank's sign-in page, the consent page and its
// checkbox tree, the demo result page, the "Your apps" page with its revoke button, a second run
// that is denied, a payment consent for one payment (PAY-123) by the FAPI 2.0 payment app, and a
// second customer whose browser has JavaScript turned off.
//
// Env: SCOPEGATE_URL (the server's base URL, required), SCOPEGATE_SCREENSHOTS (a directory for
// full-page screenshots, optional). Prints one line per check and a summary; exits 1 on any failure.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.SCOPEGATE_URL || '').replace(/\/+$/, '');
const SHOTS = process.env.SCOPEGATE_SCREENSHOTS || '';
const DESKTOP = { width: 1280, height: 900 };
const MOBILE = { width: 390, height: 844 };

let passed = 0;
let failed = 0;

class StoryAborted extends Error {}

function indent(text) {
    return String(text)
        .replace(/\u001b\[[0-9;]*m/g, '')
        .split('\n')
        .slice(0, 12)
        .map((line) => `       ${line}`)
        .join('\n');
}

function report(ok, name, error) {
    if (ok) {
        passed += 1;
        console.log(`ok   ${name}`);
    } else {
        failed += 1;
        console.log(`FAIL ${name}`);
        if (error) console.log(indent(error.message || error));
    }
}

// A check: its failure is reported and the story goes on.
async function check(name, fn) {
    try {
        await fn();
        report(true, name);
        return true;
    } catch (error) {
        report(false, name, error);
        return false;
    }
}

// A step the rest of the story depends on: its failure is reported and ends the story.
async function step(name, fn) {
    if (!(await check(name, fn))) throw new StoryAborted(name);
}

async function story(name, page, fn) {
    try {
        await fn();
    } catch (error) {
        if (!(error instanceof StoryAborted)) report(false, `${name}: unexpected error`, error);
        console.log(`       (the rest of "${name}" was skipped; the page was ${page.url()})`);
        await screenshot(page, `failure-${name.replace(/\W+/g, '-')}`).catch(() => {});
    }
}

async function screenshot(page, name) {
    if (!SHOTS) return null;
    mkdirSync(SHOTS, { recursive: true });
    const file = path.join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
}

const url = (p) => `${BASE}${p}`;
const pathOf = (u) => new URL(u).pathname;

// The JSON shown in a <pre> of the result page's region (a <section> labelled by its heading).
async function regionJson(page, regionName) {
    const text = await page.getByRole('region', { name: regionName, exact: true }).locator('pre').innerText();
    return JSON.parse(text);
}

// /demo → "Show my balance" → (redirects through /demo/start and /authorize) the bank's page.
// Returns the main-frame response of the page we land on.
async function startDemo(page) {
    await page.goto(url('/demo'));
    const button = page.getByRole('button', { name: 'Show my balance' });
    const [response] = await Promise.all([
        page.waitForResponse(
            (r) => r.request().isNavigationRequest() && r.request().method() === 'GET' &&
                ['/login', '/authorize'].includes(pathOf(r.url())) && r.status() < 300,
        ),
        button.click(),
    ]);
    await page.waitForLoadState('domcontentloaded');
    return response;
}

async function signIn(page, username, password) {
    await page.getByLabel('Username', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await Promise.all([
        page.waitForURL((u) => u.pathname !== '/login'),
        page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
}

const consentHeading = (page) => page.getByRole('heading', { level: 1, name: /wants access to your accounts/ });
const scopeBox = (page, scope) => page.locator(`form.consent-form input[type="checkbox"][value="${scope}"]`);
const scopeRow = (page, scope) => page.locator(`form.consent-form li[data-node="${scope}"]`);

async function aliceStory(browser) {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await story('alice', page, async () => {
        let loginResponse;
        await step('demo: "Show my balance" leads to the bank\'s sign-in page', async () => {
            loginResponse = await startDemo(page);
            assert.equal(pathOf(page.url()), '/login');
            await page.getByRole('heading', { name: 'Sign in' }).waitFor();
        });

        await check('sign-in page: X-Frame-Options DENY and CSP frame-ancestors \'none\'', async () => {
            assert.equal(pathOf(loginResponse.url()), '/login');
            const headers = await loginResponse.allHeaders();
            assert.equal((headers['x-frame-options'] || '').toUpperCase(), 'DENY');
            const csp = headers['content-security-policy'] || '';
            assert.match(csp, /frame-ancestors 'none'/, `Content-Security-Policy: ${csp}`);
        });
        await screenshot(page, 'login-desktop');

        await step('sign-in page: a wrong password shows the generic message', async () => {
            await page.getByLabel('Username', { exact: true }).fill('alice');
            await page.getByLabel('Password', { exact: true }).fill('not-alice-password');
            await Promise.all([
                page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r.url()) === '/login'),
                page.getByRole('button', { name: 'Sign in' }).click(),
            ]);
            await page.waitForLoadState('domcontentloaded');
            assert.equal(pathOf(page.url()), '/login');
            const alert = page.getByRole('alert');
            await alert.waitFor();
            assert.equal((await alert.innerText()).trim(), 'The username or password is incorrect.');
        });

        await step('sign-in page: alice signs in and reaches the consent page', async () => {
            await signIn(page, 'alice', 'alice-password');
            await consentHeading(page).waitFor();
        });

        await check('consent page: shows the client name "Online Bank"', async () => {
            const heading = (await consentHeading(page).innerText()).trim();
            assert.equal(heading, 'Online Bank wants access to your accounts');
        });
        await check('consent page: shows who is signed in (Alice)', async () => {
            const who = await page.getByText(/Signed in as/).innerText();
            assert.match(who, /Signed in as\s+Alice\b/);
        });
        await check('consent page: "Your profile" is Included, without a checkbox', async () => {
            const row = scopeRow(page, 'profile');
            assert.match(await row.innerText(), /Your profile/);
            assert.equal((await row.locator('.badge-included').innerText()).trim(), 'Included');
            assert.equal(await row.getByRole('checkbox').count(), 0);
            assert.equal(await page.getByRole('checkbox', { name: /Your profile/ }).count(), 0);
        });
        await check('consent page: the accounts scopes have labelled checkboxes, ticked by default', async () => {
            for (const [scope, name] of [
                ['accounts', /Your accounts/],
                ['accounts.balance', /Account balance/],
                ['accounts.transactions', /Transactions/],
            ]) {
                const box = page.getByRole('checkbox', { name });
                assert.equal(await box.count(), 1, `one checkbox named ${name}`);
                assert.equal(await box.getAttribute('value'), scope);
                assert.equal(await box.isChecked(), true, `${scope} is ticked`);
            }
        });
        await check('consent page: the limits in words ("for 90 days", "up to 100 accesses") are visible', async () => {
            const days = scopeRow(page, 'accounts.balance').getByText('for 90 days');
            const count = scopeRow(page, 'accounts.transactions').getByText('up to 100 accesses');
            assert.equal(await days.isVisible(), true, '"for 90 days" on the balance row');
            assert.equal(await count.isVisible(), true, '"up to 100 accesses" on the transactions row');
        });
        for (const [name, size] of [['consent-desktop', DESKTOP], ['consent-mobile', MOBILE]]) {
            await page.setViewportSize(size);
            await screenshot(page, name);
        }
        await page.setViewportSize(DESKTOP);

        const parent = scopeBox(page, 'accounts');
        const balance = scopeBox(page, 'accounts.balance');
        const transactions = scopeBox(page, 'accounts.transactions');
        await check('checkbox tree: unticking "Your accounts" unticks its children', async () => {
            await parent.uncheck();
            assert.equal(await balance.isChecked(), false, 'balance unticked');
            assert.equal(await transactions.isChecked(), false, 'transactions unticked');
        });
        await check('checkbox tree: ticking "Your accounts" again ticks its children', async () => {
            await parent.check();
            assert.equal(await balance.isChecked(), true, 'balance ticked');
            assert.equal(await transactions.isChecked(), true, 'transactions ticked');
        });
        await check('checkbox tree: unticking only "Transactions" leaves "Account balance" ticked', async () => {
            await transactions.uncheck();
            assert.equal(await transactions.isChecked(), false, 'transactions unticked');
            assert.equal(await balance.isChecked(), true, 'balance still ticked');
            assert.equal(await parent.evaluate((box) => box.indeterminate), true, 'the parent shows a partial choice');
        });

        await step('consent page: Allow leads back to Online Bank', async () => {
            await Promise.all([
                page.waitForURL((u) => u.pathname === '/demo/callback'),
                page.getByRole('button', { name: 'Allow', exact: true }).click(),
            ]);
            await page.getByRole('heading', { level: 1 }).waitFor();
        });
        await screenshot(page, 'result-desktop');

        await check('result page: the balance card shows 2,481.17', async () => {
            await page.getByRole('heading', { level: 1, name: 'Your balance', exact: true }).waitFor({ timeout: 2000 });
            const body = await regionJson(page, 'Your balance');
            assert.equal(body.balance, '2,481.17');
            assert.equal(body.owner, 'alice');
        });
        await check('result page: the token response\'s scope is "accounts.balance profile"', async () => {
            const token = await regionJson(page, 'Token response');
            const scopes = String(token.scope).split(' ').sort();
            assert.deepEqual(scopes, ['accounts.balance', 'profile'], `scope: ${JSON.stringify(token.scope)}`);
            assert.ok(!scopes.includes('accounts.transactions'), 'the unticked transactions scope is not granted');
            assert.ok(!scopes.includes('accounts'), 'accounts as a whole is not granted');
        });
        await check('result page: introspection says active, username alice', async () => {
            const info = await regionJson(page, 'Introspection by the bank\'s API');
            assert.equal(info.active, true);
            assert.equal(info.username, 'alice');
        });

        const app = page.getByRole('region', { name: 'Online Bank', exact: true });
        await step('your apps: Online Bank is listed with its scopes', async () => {
            await page.goto(url('/account'));
            await page.getByRole('heading', { level: 1, name: 'Your apps' }).waitFor();
            assert.equal(await app.count(), 1, 'one "Online Bank" card');
            const permissions = (await app.getByRole('rowheader').allInnerTexts()).join('\n');
            assert.match(permissions, /Account balance\s+accounts\.balance/);
            assert.match(permissions, /Your profile\s+profile/);
            assert.doesNotMatch(permissions, /accounts\.transactions/);
        });
        await screenshot(page, 'account-desktop');

        await step('your apps: "Revoke access" removes Online Bank and says so', async () => {
            await Promise.all([
                page.waitForURL((u) => u.pathname === '/account' && u.searchParams.has('revoked')),
                app.getByRole('button', { name: /^Revoke access/ }).click(),
            ]);
            const notice = page.getByRole('status');
            await notice.waitFor();
            assert.match(await notice.innerText(), /access has been revoked/);
            assert.equal(await app.count(), 0, 'Online Bank is gone');
        });

        await step('second run: the consent page appears again after the revoke', async () => {
            await startDemo(page);
            await consentHeading(page).waitFor();
            assert.equal(pathOf(page.url()), '/authorize');
        });
        await step('second run: Deny leads back to Online Bank', async () => {
            await Promise.all([
                page.waitForURL((u) => u.pathname === '/demo/callback'),
                page.getByRole('button', { name: 'Deny', exact: true }).click(),
            ]);
        });
        await check('second run: the result page shows access_denied', async () => {
            const alert = page.getByRole('alert');
            await alert.waitFor();
            assert.match(await alert.innerText(), /access_denied/);
            assert.equal(await page.getByRole('region', { name: 'Your balance', exact: true }).count(), 0);
        });
        await screenshot(page, 'result-denied-desktop');
    });
    await context.close();
}

// The payment consent (issue 15): "Pay PAY-123" runs the FAPI 2.0 payment app (PAR,
// private_key_jwt, DPoP) against the bank; alice consents to that one payment and sees it sent.
async function alicePaysAnInvoice(browser) {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await story('alice pays PAY-123', page, async () => {
        await step('demo: "Pay PAY-123" leads to the bank\'s sign-in page through a pushed request', async () => {
            await page.goto(url('/demo'));
            const [response] = await Promise.all([
                page.waitForResponse(
                    (r) => r.request().isNavigationRequest() && pathOf(r.url()) === '/login' && r.status() < 300,
                ),
                page.getByRole('button', { name: 'Pay PAY-123' }).click(),
            ]);
            const next = new URL(response.url()).searchParams.get('next') || '';
            assert.match(next, /^\/authorize\?client_id=payments-app&request_uri=urn/, `next: ${next}`);
        });
        await step('payment: alice signs in and sees the payment consent', async () => {
            await signIn(page, 'alice', 'alice-password');
            await page.getByRole('heading', { level: 1, name: /Online Bank Payments wants access/ }).waitFor();
        });
        await check('payment consent: one box, "Transfer — PAY-123", for exactly that payment', async () => {
            const boxes = page.locator('form.consent-form input[type="checkbox"]');
            assert.equal(await boxes.count(), 1, 'the payment alone is asked for');
            const box = page.getByRole('checkbox', { name: /Transfer \u2014 PAY-123/ });
            assert.equal(await box.getAttribute('value'), 'payments.transfer:PAY-123');
            assert.equal(await box.isChecked(), true);
            const row = scopeRow(page, 'payments.transfer:PAY-123');
            assert.match(await row.innerText(), /for 1 day, up to 1 access\b/);
        });
        await screenshot(page, 'payment-consent-desktop');
        await step('payment consent: Allow leads back to the payment app', async () => {
            await Promise.all([
                page.waitForURL((u) => u.pathname === '/demo/pay/callback'),
                page.getByRole('button', { name: 'Allow', exact: true }).click(),
            ]);
            await page.getByRole('heading', { level: 1 }).waitFor();
        });
        await screenshot(page, 'payment-result-desktop');
        await check('payment result: PAY-123 is sent once: the consent has no access left', async () => {
            await page.getByRole('heading', { level: 1, name: 'Payment PAY-123 sent' }).waitFor({ timeout: 2000 });
            const payment = await regionJson(page, 'Payment PAY-123 sent');
            assert.equal(payment.status, 'executed');
            assert.equal(payment.scope, 'payments.transfer:PAY-123');
            assert.equal(payment.scope_limits.remaining_accesses, 0);
        });
        await check('payment result: the token is DPoP-bound and carries the concrete scope', async () => {
            const token = await regionJson(page, 'Token response');
            assert.equal(token.token_type, 'DPoP');
            assert.equal(token.scope, 'payments.transfer:PAY-123');
            assert.match(String(token.grant_id), /^g_/);
            const info = await regionJson(page, 'Introspection by the bank\'s payment API');
            assert.equal(info.scope, 'payments.transfer:PAY-123');
            assert.ok(info.cnf && info.cnf.jkt, 'cnf.jkt in the introspection');
        });
        await check('your apps: the payment consent is listed by its payment', async () => {
            await page.goto(url('/account'));
            const app = page.getByRole('region', { name: 'Online Bank Payments', exact: true });
            const permissions = (await app.getByRole('rowheader').allInnerTexts()).join('\n');
            assert.match(permissions, /Transfer \u2014 PAY-123\s+payments\.transfer:PAY-123/);
        });
    });
    await context.close();
}

async function bobWithoutJavaScript(browser) {
    const context = await browser.newContext({ viewport: DESKTOP, javaScriptEnabled: false });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await story('bob without JavaScript', page, async () => {
        await step('no JavaScript: "Show my balance" leads to the sign-in page', async () => {
            await startDemo(page);
            assert.equal(pathOf(page.url()), '/login');
        });
        await step('no JavaScript: bob signs in and reaches the consent page', async () => {
            await signIn(page, 'bob', 'bob-password');
            await consentHeading(page).waitFor();
        });
        await check('no JavaScript: the consent page shows Bob and the boxes ticked', async () => {
            assert.match(await page.getByText(/Signed in as/).innerText(), /Signed in as\s+Bob\b/);
            for (const scope of ['accounts', 'accounts.balance', 'accounts.transactions']) {
                assert.equal(await scopeBox(page, scope).isChecked(), true, `${scope} is ticked`);
            }
        });
        await screenshot(page, 'consent-nojs-desktop');
        await step('no JavaScript: Allow leads back to Online Bank', async () => {
            await Promise.all([
                page.waitForURL((u) => u.pathname === '/demo/callback'),
                page.getByRole('button', { name: 'Allow', exact: true }).click(),
            ]);
        });
        await check('no JavaScript: the balance is shown', async () => {
            const body = await regionJson(page, 'Your balance');
            assert.equal(body.balance, '2,481.17');
            assert.equal(body.owner, 'bob');
            const info = await regionJson(page, 'Introspection by the bank\'s API');
            assert.equal(info.active, true);
            assert.equal(info.username, 'bob');
            assert.match(info.scope, /(^| )accounts\.balance( |$)/);
        });
        await screenshot(page, 'result-nojs-desktop');
    });
    await context.close();
}

async function main() {
    let browser;
    try {
        assert.ok(BASE, 'SCOPEGATE_URL is not set');
        browser = await chromium.launch({
            executablePath: '/usr/bin/chromium',
            headless: true,
            args: [
                '--no-sandbox',
                '--disable-gpu',
                '--disable-quic',
                '--no-first-run',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
            ],
        });
        await aliceStory(browser);
        await alicePaysAnInvoice(browser);
        await bobWithoutJavaScript(browser);
    } catch (error) {
        report(false, 'the browser run', error);
    } finally {
        if (browser) await browser.close().catch(() => {});
    }
    if (passed === 0 && failed === 0) report(false, 'no check ran');
    if (SHOTS) console.log(`     screenshots in ${SHOTS}`);
    console.log(`browser (chromium): ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
}

await main();
