// An administrator's day in the console (/admin), in a real browser (Debian's chromium driven by
// playwright-core) against `serve --demo`: sign in as admin, build a small tree and move a
// subtree, try to delete a scope in use and read why it was refused, register a client and copy
// its secret, assign it scopes, find alice's grant and revoke it, and see all of it on the events
// page. Also: a customer gets 403, a form without its CSRF token is refused, and axe-core finds
// no WCAG 2.1 A/AA violation on any console page at 1280 px and at 390 px.
//
// Env: SCOPEGATE_URL (the server's base URL, required), SCOPEGATE_SCREENSHOTS (a directory for
// the console's screenshots, optional: `SCOPEGATE_SCREENSHOTS=docs` refreshes the README's).
// Prints one line per check and a summary; exits 1 on any failure.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const BASE = (process.env.SCOPEGATE_URL || '').replace(/\/+$/, '');
const SHOTS = process.env.SCOPEGATE_SCREENSHOTS || '';
const DESKTOP = { width: 1280, height: 900 };
const MOBILE = { width: 390, height: 844 };

let passed = 0;
let failed = 0;
const axeTotals = { pages: 0, checks: 0, violations: 0 };

class StoryAborted extends Error {}

function report(ok, name, error) {
    if (ok) {
        passed += 1;
        console.log(`ok   ${name}`);
    } else {
        failed += 1;
        console.log(`FAIL ${name}`);
        if (error) {
            const text = String(error.message || error).replace(/\u001b\[[0-9;]*m/g, '');
            console.log(text.split('\n').slice(0, 20).map((line) => `       ${line}`).join('\n'));
        }
    }
}

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

async function step(name, fn) {
    if (!(await check(name, fn))) throw new StoryAborted(name);
}

async function story(name, page, fn) {
    try {
        await fn();
    } catch (error) {
        if (!(error instanceof StoryAborted)) report(false, `${name}: unexpected error`, error);
        console.log(`       (the rest of "${name}" was skipped; the page was ${page.url()})`);
    }
}

async function screenshot(page, name) {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const url = (p) => `${BASE}${p}`;
const pathOf = (u) => new URL(u).pathname;

// Submits the form holding `button` and waits for the page it leads to.
async function submit(page, button) {
    await Promise.all([page.waitForEvent('framenavigated'), button.click()]);
    await page.waitForLoadState('domcontentloaded');
}

// axe-core on the current page at both widths; any WCAG 2.1 A/AA violation fails the check.
// Runs through the DevTools protocol, which the pages' CSP does not govern.
async function accessible(page, label) {
    await check(`axe: ${label} has no WCAG 2.1 A/AA violation at 1280 px and 390 px`, async () => {
        const problems = [];
        axeTotals.pages += 1;
        for (const size of [DESKTOP, MOBILE]) {
            await page.setViewportSize(size);
            if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
            const result = await page.evaluate(
                (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
                WCAG_TAGS,
            );
            assert.ok(result.passes.length > 0, `axe checked nothing at ${size.width} px`);
            axeTotals.checks += 1;
            axeTotals.violations += result.violations.length;
            for (const violation of result.violations) {
                const targets = violation.nodes.slice(0, 3).map((node) => node.target.join(' ')).join(', ');
                problems.push(`${size.width} px: ${violation.id} (${violation.impact}): ${violation.help} at ${targets}`);
            }
            if (size === MOBILE) {
                const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
                if (overflow > 1) problems.push(`390 px: the page is ${overflow} px wider than the screen`);
            }
        }
        await page.setViewportSize(DESKTOP);
        assert.equal(problems.length, 0, problems.join('\n'));
    });
}

async function signIn(page, username, password, next) {
    await page.goto(url(`/login?next=${encodeURIComponent(next)}`));
    await page.getByLabel('Username', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await Promise.all([
        page.waitForURL((u) => u.pathname !== '/login'),
        page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
}

async function createScope(page, name, parent, level) {
    await page.goto(url('/admin/scopes'));
    await page.locator('#new-name').fill(name);
    await page.locator('#new-parent').selectOption(parent);
    await page.locator('#new-short').fill(`The ${name} scope`);
    await page.locator('#new-level').selectOption(level);
    await submit(page, page.getByRole('button', { name: 'Create scope' }));
    assert.match(await page.getByRole('status').innerText(), /The scope was created/);
}

// alice allows the demo app her accounts, so that she holds a grant for the admin to find.
async function aliceAllows(browser) {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await page.goto(url('/demo'));
    await Promise.all([
        page.waitForURL((u) => u.pathname === '/login'),
        page.getByRole('button', { name: 'Show my balance' }).click(),
    ]);
    await page.getByLabel('Username', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('alice-password');
    await Promise.all([
        page.waitForURL((u) => u.pathname !== '/login'),
        page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    if (pathOf(page.url()) === '/authorize') {
        await Promise.all([
            page.waitForURL((u) => u.pathname === '/demo/callback'),
            page.getByRole('button', { name: 'Allow', exact: true }).click(),
        ]);
    }
    return { context, page };
}

async function administratorsDay(browser) {
    const alice = await aliceAllows(browser);
    const context = await browser.newContext({ viewport: DESKTOP });
    context.setDefaultTimeout(10_000);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
    const page = await context.newPage();
    let clientPath = '';
    await story('an administrator\'s day', page, async () => {
        await step('sign in: /admin sends admin to the sign-in page and back to the overview', async () => {
            await page.goto(url('/admin'));
            assert.equal(pathOf(page.url()), '/login');
            await signIn(page, 'admin', 'admin-password', '/admin');
            assert.equal(pathOf(page.url()), '/admin');
            await page.getByRole('heading', { level: 1, name: 'Administration' }).waitFor();
            await page.getByRole('heading', { level: 2, name: 'Recent events' }).waitFor();
        });
        await accessible(page, 'the overview');

        await step('scopes: build a small tree (cards with two children, loans)', async () => {
            await createScope(page, 'cards', '', 'D');
            await createScope(page, 'cards.limits', 'cards', 'D');
            await createScope(page, 'cards.pin', 'cards', 'B');
            await createScope(page, 'loans', '', 'C');
            const cards = page.locator('.console-tree li').filter({ has: page.locator('> .console-tree-node a', { hasText: /^cards$/ }) });
            assert.deepEqual(await cards.locator('> ul > li > .console-tree-node code').allInnerTexts(), ['cards.limits', 'cards.pin']);
        });
        await accessible(page, 'the scope tree');

        await step('scopes: move the cards subtree under loans, first', async () => {
            await page.goto(url('/admin/scopes/cards'));
            await page.getByLabel('New parent').selectOption('loans');
            await page.getByLabel('Position among its new siblings').fill('0');
            await submit(page, page.getByRole('button', { name: 'Move scope' }));
            assert.match(await page.getByRole('status').innerText(), /moved/);
            await page.goto(url('/admin/scopes'));
            const loans = page.locator('.console-tree li').filter({ has: page.locator('> .console-tree-node a', { hasText: /^loans$/ }) });
            const below = await loans.locator('.console-tree-node code').allInnerTexts();
            assert.deepEqual(below, ['loans', 'cards', 'cards.limits', 'cards.pin']);
        });
        await check('scopes: the tree collapses and expands with the script', async () => {
            const toggle = page.getByRole('button', { name: 'Children of loans' });
            await toggle.click();
            assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
            assert.equal(await page.getByRole('link', { name: 'cards.pin' }).isVisible(), false);
            await toggle.click();
            assert.equal(await page.getByRole('link', { name: 'cards.pin' }).isVisible(), true);
        });
        await screenshot(page, 'console-scopes');
        await check('scopes: search by keyword and security level', async () => {
            await page.getByLabel('Keyword').fill('card');
            await page.locator('#search-level').selectOption('B');
            await submit(page, page.getByRole('button', { name: 'Search' }));
            assert.deepEqual(await page.locator('.console-tree-node code').allInnerTexts(), ['cards.pin']);
        });
        await accessible(page, 'a scope search');
        await page.goto(url('/admin/scopes/cards'));
        await accessible(page, 'a scope\'s page (edit, move, delete)');

        await step('scopes: deleting accounts asks for confirmation, then is refused and says why', async () => {
            await page.goto(url('/admin/scopes/accounts'));
            await submit(page, page.getByRole('link', { name: /^Delete accounts/ }));
            await page.getByRole('heading', { level: 1, name: /Delete the scope accounts/ }).waitFor();
            await accessible(page, 'the delete confirmation');
            await submit(page, page.getByRole('button', { name: 'Delete these scopes' }));
            await page.getByRole('heading', { level: 1, name: 'accounts cannot be deleted' }).waitFor();
            assert.match(await page.getByRole('alert').innerText(), /Scope cannot be deleted/);
            const text = await page.locator('main').innerText();
            assert.match(text, /online-bank holds accounts/, 'the assigned client is named');
            assert.match(text, /alice allowed online-bank accounts\.balance/, 'alice\'s grant is named');
        });
        await accessible(page, 'a refused delete');

        await step('clients: register Ledger; the secret is shown once and copied', async () => {
            await page.goto(url('/admin/clients'));
            await page.locator('#new-name').fill('Ledger');
            await page.getByLabel(/^Confidential/).check();
            await page.locator('#new-grant-2').check();
            await page.locator('#new-level').selectOption('C');
            await submit(page, page.getByRole('button', { name: 'Register client' }));
            const secret = (await page.locator('#client-secret').innerText()).trim();
            assert.match(secret, /^[A-Za-z0-9_-]{20,}$/);
            await page.getByRole('button', { name: 'Copy the secret' }).click();
            await page.getByText('Copied.').waitFor();
            assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
            const clientId = await page.locator('input[name="client_id"]').inputValue();
            clientPath = `/admin/clients/${clientId}`;
            const token = await context.request.post(url('/token'), {
                form: { grant_type: 'client_credentials' },
                headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
            });
            assert.equal(token.status(), 200, 'the copied secret works at /token');
        });
        await accessible(page, 'a new client with its secret');

        await step('clients: assign scopes from the tree; the level rule is explained', async () => {
            await page.goto(url(clientPath));
            assert.equal(await page.getByRole('checkbox', { name: /^payments\.transfer/ }).isDisabled(), true);
            assert.match(await page.locator('#level-rule').innerText(), /level C: it may hold scopes of level C, D, E, F/);
            await page.getByRole('checkbox', { name: /^accounts\.balance/ }).check();
            await page.getByRole('checkbox', { name: /^loans/ }).check();
            await submit(page, page.getByRole('button', { name: 'Save scopes' }));
            assert.match(await page.getByRole('status').innerText(), /scopes were saved/);
            assert.equal(await page.getByRole('checkbox', { name: /^accounts\.balance/ }).isChecked(), true);
            assert.equal(await page.getByText('Copy it now').count(), 0, 'the secret is not shown again');
        });
        await screenshot(page, 'console-client');
        await accessible(page, 'a client\'s page');

        await page.goto(url('/admin/clients'));
        await accessible(page, 'the client list');
        await page.goto(url('/admin/users'));
        await accessible(page, 'the user list');

        await step('grants: find alice\'s grant and revoke it', async () => {
            await page.goto(url('/admin/grants'));
            await page.getByLabel('User').fill('alice');
            // The Online Bank story before this one also left alice's payment consent.
            await page.getByLabel('Client ID').fill('online-bank');
            await page.getByLabel('State').selectOption('active');
            await submit(page, page.getByRole('button', { name: 'Search' }));
            const rows = page.locator('tbody tr');
            assert.ok((await rows.count()) >= 1, 'alice has active grants');
            assert.match(await rows.first().innerText(), /alice[\s\S]*online-bank/);
            await accessible(page, 'the grant search');
            await submit(page, rows.first().getByRole('button', { name: /^Revoke/ }));
            assert.match(await page.getByRole('status').innerText(), /revoked/);
            // The listing comes back with alice's search: her payment consent may remain.
            assert.doesNotMatch(await page.locator('tbody').innerText(), /online-bank/, 'nothing alice gave online-bank is left');
        });
        await check('grants: alice\'s app lost its access', async () => {
            await alice.page.goto(url('/account'));
            assert.equal(await alice.page.getByRole('region', { name: 'Online Bank', exact: true }).count(), 0);
        });

        await step('events: the day is on the events page, with admin as the actor', async () => {
            await page.goto(url('/admin/events'));
            const text = await page.locator('tbody').innerText();
            for (const kind of ['scope.created', 'scope.moved', 'client.created', 'client.scopes_assigned', 'consent.revoked']) {
                assert.match(text, new RegExp(`${kind.replace('.', '\\.')}\\s+user:admin`), `${kind} by user:admin`);
            }
            assert.doesNotMatch(text, /scope\.deleted/, 'the refused delete recorded nothing');
        });
        await check('events: filter by type', async () => {
            await page.getByLabel('Event type').selectOption('scope.moved');
            await submit(page, page.getByRole('button', { name: 'Show events' }));
            const kinds = await page.locator('tbody td[data-label="Event"]').allInnerTexts();
            assert.deepEqual(kinds, ['scope.moved']);
        });
        await page.goto(url('/admin/events'));
        await screenshot(page, 'console-events');
        await accessible(page, 'the events page');

        await check('csrf: a form posted without its CSRF token is refused with 403', async () => {
            const response = await context.request.post(url('/admin/scopes'), {
                form: { name: 'forged', short_description: 'Forged' },
                maxRedirects: 0,
            });
            assert.equal(response.status(), 403);
            const tree = await context.request.get(url('/admin/scopes'));
            assert.doesNotMatch(await tree.text(), />forged</);
        });
    });
    await check('non-admin: alice gets a 403 page at /admin', async () => {
        const response = await alice.page.goto(url('/admin/scopes'));
        assert.equal(response.status(), 403);
        await alice.page.getByRole('heading', { level: 1, name: 'Not an administrator' }).waitFor();
    });
    await alice.context.close();
    await context.close();
}

async function withoutJavaScript(browser) {
    const context = await browser.newContext({ viewport: MOBILE, javaScriptEnabled: false });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await story('the console without JavaScript at 390 px', page, async () => {
        await step('no JavaScript: admin signs in and creates a scope', async () => {
            await signIn(page, 'admin', 'admin-password', '/admin/scopes');
            await createScope(page, 'mortgages', '', 'C');
            assert.equal(await page.getByRole('link', { name: 'mortgages' }).count(), 1);
        });
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
            args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        });
        await administratorsDay(browser);
        await withoutJavaScript(browser);
    } catch (error) {
        report(false, 'the browser run', error);
    } finally {
        if (browser) await browser.close().catch(() => {});
    }
    if (passed === 0 && failed === 0) report(false, 'no check ran');
    if (SHOTS) console.log(`     screenshots in ${SHOTS}`);
    console.log(`axe-core: ${axeTotals.pages} console pages × 2 widths = ${axeTotals.checks} runs, ${axeTotals.violations} WCAG 2.1 A/AA violations`);
    console.log(`console (chromium): ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
}

await main();
