// A real OpenID provider for the portal's tests: panva/oidc-provider on a loopback port.
//
//   OIDC_TEST_CONFIG=/path/config.json node provider.mjs
//
// config.json (written by tests/signin/conftest.py):
//   { "port": 54321,
//     "shape": "google" | "microsoft",
//     "client": { "client_id", "client_secret", "redirect_uris": [...] },
//     "accounts": { "<login>": { "claims": {...},                // sub is required
//                                "error": { "error", "error_description" },  // optional
//                                "tamper": { "unknown_key": true, "expired": true,
//                                            "claims": {...} } } } }       // optional
//
// The login page's "login" field picks an account from that table. An account with
// "error" finishes the interaction with that OAuth error (consent blocked, cancelled…);
// the "Cancel" button finishes it with access_denied. "tamper" changes the ID token
// after the provider signed it (then re-signs it, with an unknown key if asked), so tests
// can check that the portal refuses what a broken or hostile provider would send.
//
// shape "microsoft" imitates Entra ID's multi-tenant endpoint: discovery (also served at
// /organizations/v2.0/.well-known/openid-configuration) names the issuer as the template
// http://127.0.0.1:PORT/{tenantid}/v2.0, and each ID token's iss is that template filled
// with the account's own tid. Test support only: never deploy this.

import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.env.OIDC_TEST_CONFIG, 'utf8'));
const base = `http://127.0.0.1:${config.port}`;
const microsoft = config.shape === 'microsoft';
const tenantTemplate = `${base}/{tenantid}/v2.0`;

function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

// A new kid at every start, as a real provider's key rotation has: a client that cached the
// previous run's JWKS (the portal keeps it 10 minutes) then refetches, instead of checking
// the new key's signatures against the old key under the same kid.
const signing = rsaKey(`${config.shape}-signing-${randomBytes(4).toString('hex')}`);
const stranger = rsaKey('not-in-the-jwks'); // signs tokens the provider's JWKS cannot verify

const accountsByLogin = config.accounts;
const accountsBySub = Object.fromEntries(
  Object.values(accountsByLogin).filter((a) => a.claims).map((a) => [a.claims.sub, a]),
);

const b64url = (value) => Buffer.from(value).toString('base64url');
const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function resign(idToken) {
  const payload = decodePart(idToken.split('.')[1]);
  const account = accountsBySub[payload.sub] || {};
  const tamper = account.tamper || {};
  if (microsoft) payload.iss = tenantTemplate.replace('{tenantid}', payload.tid);
  if (tamper.expired) {
    const now = Math.floor(Date.now() / 1000);
    payload.iat = now - 7200;
    payload.exp = now - 3600;
  }
  Object.assign(payload, tamper.claims || {});
  const key = tamper.unknown_key ? stranger : signing;
  const header = { alg: 'RS256', typ: 'JWT', kid: key.kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}

const provider = new Provider(base, {
  clients: [{
    ...config.client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [signing.jwk] },
  async findAccount(_ctx, sub) {
    const account = accountsBySub[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { ...account.claims }; } };
  },
  claims: {
    openid: ['sub', 'hd', 'tid', 'oid'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  conformIdTokenClaims: false, // put email, hd, tid, oid into the ID token, as Google/Entra do
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  cookies: { keys: ['portal-test-provider-cookie-key'] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // First-party test client: no consent screen, as an admin-approved app behaves.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'GET' && ctx.path === '/.well-known/openid-configuration' && microsoft
      && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, issuer: tenantTemplate };
  }
  if (ctx.method === 'POST' && ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: resign(ctx.body.id_token) };
  }
});

function loginPage(uid, problem = '') {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Test ${escapeHtml(config.shape)} sign-in</title></head><body>
<main><h1>Test ${escapeHtml(config.shape)} provider</h1>
${problem ? `<p role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label for="login">Account</label>
  <input id="login" name="login" autocomplete="off" autofocus>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button type="submit">Cancel</button>
</form></main></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) break;
  }
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET' && !action) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(loginPage(uid));
    return;
  }
  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const login = (await readForm(req)).get('login') || '';
    const account = Object.hasOwn(accountsByLogin, login) ? accountsByLogin[login] : undefined;
    if (!account) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(uid, `No test account called "${login}".`));
      return;
    }
    const result = account.error ? { ...account.error } : { login: { accountId: account.claims.sub } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(405).end();
}

const handle = provider.callback();
createServer(async (req, res) => {
  try {
    if (req.url.startsWith('/organizations/v2.0/.well-known/openid-configuration')) {
      req.url = '/.well-known/openid-configuration';
    }
    const match = /^\/interaction\/([\w-]+)(?:\/(login|abort))?$/.exec(req.url.split('?')[0]);
    if (match) {
      await interaction(req, res, match[1], match[2]);
      return;
    }
    handle(req, res);
  } catch (err) {
    if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`test provider error: ${err.message}`);
  }
}).listen(config.port, '127.0.0.1', () => {
  console.log(`oidc test provider (${config.shape}) ready on ${base}`);
});
