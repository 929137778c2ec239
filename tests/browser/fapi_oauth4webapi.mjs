// The FAPI 2.0 flow with a real third-party client: panva's oauth4webapi (certified for FAPI 2.0
// as a client) drives PAR, the code exchange, refresh, the resource request and signed
// introspection against `serve --demo`; Debian's chromium (through playwright-core) is the
// customer's browser for sign-in and consent. Each step is a check:
//   1. discovery, and a level-A private_key_jwt client registered through the admin API;
//   2. PAR with private_key_jwt, a DPoP proof (the code is bound to its key) and PKCE;
//   3. /authorize with the request_uri in chromium: sign-in, consent, back with code, state, iss;
//   4. the code exchange with private_key_jwt and DPoP: a DPoP token with cnf.jkt;
//   5. refresh with both;
//   6. /demo/bank/balance with the DPoP token and a proof with ath (and refused as a bearer);
//   7. signed introspection (RFC 9701) by the bank's API, verified with our JWKS.
//
// Env: SCOPEGATE_URL (the server's base URL, required). Prints one line per check and a summary;
// exits 1 on any failure.

import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { chromium } from 'playwright-core';

const BASE = (process.env.SCOPEGATE_URL || '').replace(/\/+$/, '');
const REDIRECT_URI = `${BASE}/interop/fapi-callback`;
// payments.transfer is parameterised: the consent is for one payment, PAY-42.
const SCOPE = 'accounts.balance payments.transfer:PAY-42';

let passed = 0;
let failed = 0;

class StoryAborted extends Error {}

function report(ok, name, error) {
    if (ok) {
        passed += 1;
        console.log(`ok   ${name}`);
    } else {
        failed += 1;
        console.log(`FAIL ${name}`);
        if (error) {
            const detail = [error.message || String(error), error.cause ? JSON.stringify(error.cause) : '']
                .join('\n')
                .split('\n')
                .slice(0, 12)
                .map((line) => `       ${line}`)
                .join('\n');
            console.log(detail);
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

// http://127.0.0.1 is what the test server listens on; oauth4webapi refuses plain http unless told.
const insecure = { [oauth.allowInsecureRequests]: true };

async function adminToken() {
    const response = await fetch(`${BASE}/token`, {
        method: 'POST',
        headers: {
            authorization: `Basic ${Buffer.from('demo-admin:demo-admin-secret').toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'scopegate:admin' }),
    });
    const body = await response.json();
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.access_token;
}

async function registerClient(publicJwk) {
    const response = await fetch(`${BASE}/admin/v1/clients`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
        body: JSON.stringify({
            name: 'oauth4webapi FAPI client',
            redirect_uris: [REDIRECT_URI],
            security_level: 'A',
            token_endpoint_auth_method: 'private_key_jwt',
            jwks: { keys: [publicJwk] },
            dpop_bound_access_tokens: true,
            require_pushed_authorization_requests: true,
            scopes: ['accounts', 'payments'],
        }),
    });
    const body = await response.json();
    assert.equal(response.status, 201, JSON.stringify(body));
    return body.client_id;
}

// Runs a request that may be answered `use_dpop_nonce` once (when the server wants nonces): the
// DPoP handle keeps the nonce and the retry carries it.
async function withNonceRetry(request) {
    try {
        return await request();
    } catch (error) {
        if (oauth.isDPoPNonceError(error)) return request();
        throw error;
    }
}

// The customer's part in chromium: the request_uri at /authorize, sign-in, consent. The redirect
// URI is a path of the server under test that nothing serves (a 404 page is fine): what counts
// is the URL the browser was sent to. Returns that callback URL.
async function customerConsents(browser, authorizeUrl) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    try {
        await page.goto(authorizeUrl.href);
        await page.getByLabel('Username', { exact: true }).fill('alice');
        await page.getByLabel('Password', { exact: true }).fill('alice-password');
        await Promise.all([
            page.waitForURL((u) => u.pathname !== '/login'),
            page.getByRole('button', { name: 'Sign in' }).click(),
        ]);
        await page.getByRole('heading', { level: 1, name: /wants access to your accounts/ }).waitFor();
        await Promise.all([
            page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
            page.getByRole('button', { name: 'Allow', exact: true }).click(),
        ]);
        return new URL(page.url());
    } finally {
        await context.close();
    }
}

async function fapiStory(browser) {
    let as, client, clientAuth, dpop, dpopKeys, codeVerifier, state, pushed, callback, tokens;

    await step('discovery: oauth4webapi accepts the metadata; PAR, private_key_jwt, DPoP and signed introspection are listed', async () => {
        const issuer = new URL(BASE);
        as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
        assert.equal(as.pushed_authorization_request_endpoint, `${BASE}/par`);
        assert.ok(as.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
        assert.ok(as.dpop_signing_alg_values_supported.includes('ES256'));
        assert.deepEqual(as.introspection_signing_alg_values_supported, ['ES256']);
    });

    await step('registration: a level-A private_key_jwt client with its public key, through the admin API', async () => {
        const clientKeys = await oauth.generateKeyPair('ES256', { extractable: true });
        const publicJwk = await crypto.subtle.exportKey('jwk', clientKeys.publicKey);
        const kid = 'oauth4webapi-key-1';
        const clientId = await registerClient({ ...publicJwk, kid, alg: 'ES256', use: 'sig' });
        client = { client_id: clientId };
        clientAuth = oauth.PrivateKeyJwt({ key: clientKeys.privateKey, kid });
        dpopKeys = await oauth.generateKeyPair('ES256');
        dpop = oauth.DPoP(client, dpopKeys);
    });

    await step('PAR: private_key_jwt + DPoP + PKCE S256 give a request_uri for 60 s', async () => {
        codeVerifier = oauth.generateRandomCodeVerifier();
        state = oauth.generateRandomState();
        const parameters = new URLSearchParams({
            response_type: 'code',
            redirect_uri: REDIRECT_URI,
            scope: SCOPE,
            state,
            code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
            code_challenge_method: 'S256',
        });
        pushed = await withNonceRetry(async () =>
            oauth.processPushedAuthorizationResponse(
                as,
                client,
                await oauth.pushedAuthorizationRequest(as, client, clientAuth, parameters, { DPoP: dpop, ...insecure }),
            ),
        );
        assert.match(pushed.request_uri, /^urn:ietf:params:oauth:request_uri:/);
        assert.equal(pushed.expires_in, 60);
    });

    await step('authorize in chromium: alice signs in and allows; back with code, state and iss (RFC 9207)', async () => {
        const authorizeUrl = new URL(as.authorization_endpoint);
        authorizeUrl.searchParams.set('client_id', client.client_id);
        authorizeUrl.searchParams.set('request_uri', pushed.request_uri);
        callback = await customerConsents(browser, authorizeUrl);
        assert.equal(callback.searchParams.get('iss'), BASE);
    });

    let callbackParameters;
    await step('authorization response: oauth4webapi validates state and iss', async () => {
        callbackParameters = oauth.validateAuthResponse(as, client, callback, state);
        assert.ok(callbackParameters.get('code'));
    });

    await check('the request_uri is used up: a second /authorize with it is refused', async () => {
        const again = await fetch(`${as.authorization_endpoint}?client_id=${encodeURIComponent(client.client_id)}&request_uri=${encodeURIComponent(pushed.request_uri)}`, { redirect: 'manual' });
        assert.ok(again.status === 400 || again.status === 303, `status ${again.status}`);
        if (again.status === 303) assert.match(again.headers.get('location'), /^\/login/, 'sent to sign in, not on');
    });

    await step('code exchange: private_key_jwt + DPoP give a DPoP-bound token', async () => {
        tokens = await withNonceRetry(async () =>
            oauth.processAuthorizationCodeResponse(
                as,
                client,
                await oauth.authorizationCodeGrantRequest(as, client, clientAuth, callbackParameters, REDIRECT_URI, codeVerifier, {
                    DPoP: dpop,
                    ...insecure,
                }),
            ),
        );
        assert.equal(tokens.token_type, 'dpop');
        assert.ok(tokens.scope.split(' ').includes('accounts.balance'), `scope: ${tokens.scope}`);
        assert.ok(tokens.scope.split(' ').includes('payments.transfer:PAY-42'), `scope: ${tokens.scope}`);
        // payments.transfer is count-limited (one use), so the token is opaque: a JWT checked
        // locally could not be counted. Its cnf.jkt is checked by introspection below.
        assert.equal(tokens.access_token.split('.').length, 1, 'an opaque token');
    });

    await step('refresh: private_key_jwt + DPoP rotate the refresh token', async () => {
        const previous = tokens.refresh_token;
        tokens = await withNonceRetry(async () =>
            oauth.processRefreshTokenResponse(
                as,
                client,
                await oauth.refreshTokenGrantRequest(as, client, clientAuth, previous, { DPoP: dpop, ...insecure }),
            ),
        );
        assert.equal(tokens.token_type, 'dpop');
        assert.notEqual(tokens.refresh_token, previous);
    });

    await check('resource: /demo/bank/balance answers the DPoP token with a proof bound by ath', async () => {
        const response = await oauth.protectedResourceRequest(
            tokens.access_token,
            'GET',
            new URL(`${BASE}/demo/bank/balance`),
            new Headers(),
            null,
            { DPoP: dpop, ...insecure },
        );
        const body = await response.json();
        assert.equal(response.status, 200, JSON.stringify(body));
        assert.equal(body.owner, 'alice');
    });

    await check('resource: the same token as a bearer token is refused (401)', async () => {
        const response = await fetch(`${BASE}/demo/bank/balance`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
        assert.equal(response.status, 401);
        assert.match(response.headers.get('www-authenticate') || '', /^DPoP /);
    });

    await check('signed introspection: the bank\'s API gets a JWS for itself, verified with the server\'s JWKS', async () => {
        const bank = { client_id: 'bank-api' };
        const response = await oauth.introspectionRequest(as, bank, oauth.ClientSecretBasic('bank-api-secret'), tokens.access_token, {
            requestJwtResponse: true,
            ...insecure,
        });
        assert.equal(response.headers.get('content-type'), 'application/token-introspection+jwt');
        const introspection = await oauth.processIntrospectionResponse(as, bank, response);
        // oauth4webapi checks the signature apart, with the keys of jwks_uri.
        await oauth.validateApplicationLevelSignature(as, response, insecure);
        assert.equal(introspection.active, true);
        assert.equal(introspection.token_type, 'DPoP');
        assert.equal(introspection.cnf.jkt, await dpop.calculateThumbprint());
        assert.equal(introspection.client_id, client.client_id);
    });
}

async function main() {
    let browser;
    try {
        assert.ok(BASE, 'SCOPEGATE_URL is not set');
        browser = await chromium.launch({
            executablePath: '/usr/bin/chromium',
            headless: true,
            args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
        });
        await fapiStory(browser);
    } catch (error) {
        if (!(error instanceof StoryAborted)) report(false, 'the FAPI run', error);
    } finally {
        if (browser) await browser.close().catch(() => {});
    }
    if (passed === 0 && failed === 0) report(false, 'no check ran');
    console.log(`fapi (oauth4webapi + chromium): ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 ? 0 : 1;
}

await main();
