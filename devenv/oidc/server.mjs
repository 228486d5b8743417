// The local OpenID Connect provider of the development platform (make demo, tests): the certified
// `oidc-provider` package with the platform's users, passwords and groups, its own sign-in and
// consent pages, and a loopback-only admin API to change groups and to make the next token
// response carry a bad ID token. Not for production.
//
// usage: node server.mjs CONFIG.json   (written by devenv/oidc/provider.py)
// environment: MLTEAMS_OIDC_MODULES, the node_modules folder holding oidc-provider and jose.

import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

async function load(name) {
  const folder = join(process.env.MLTEAMS_OIDC_MODULES, name);
  const meta = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  const root = meta.exports?.['.'];
  const entry = typeof root === 'string' ? root : root?.import ?? root?.default ?? meta.main;
  return import(pathToFileURL(join(folder, entry)).href);
}

const { default: Provider } = await load('oidc-provider');
const jose = await load('jose');

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(Object.entries(settings.users));
const faults = { idToken: null };

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await jose.exportJWK(privateKey)), kid: randomUUID(), use: 'sig', alg: 'RS256' };

function account(name) {
  const user = users.get(name);
  if (!user) return undefined;
  return {
    accountId: name,
    async claims() {
      return {
        sub: name,
        preferred_username: name,
        name: user.name ?? name,
        email: user.email ?? `${name}@example.com`,
        email_verified: true,
        groups: [...(users.get(name)?.groups ?? [])],
      };
    },
  };
}

const provider = new Provider(settings.issuer, {
  clients: settings.clients,
  findAccount: async (ctx, sub) => account(sub),
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false } },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID(), randomUUID()] },
  ttl: { AccessToken: 8 * 3600, IdToken: 3600, Interaction: 3600, Session: 14 * 24 * 3600, Grant: 14 * 24 * 3600 },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:26rem;margin:4rem auto;color:#222}
form{display:grid;gap:.6rem}input{padding:.5rem;font-size:1rem}button{padding:.6rem;font-size:1rem}
.error{color:#b00020}.muted{color:#666;font-size:.9rem}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, client, error = '') {
  return page('Sign in to mlteams SSO', `
<p class="muted">${escape(client)} asks you to sign in.</p>
${error ? `<p class="error" id="login-error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <label>Username <input id="username" name="username" required autofocus></label>
  <label>Password <input id="password" name="password" type="password" required></label>
  <button id="sign-in" type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, client, scopes) {
  return page('Allow access?', `
<p>${escape(client)} would like to read your ${escape(scopes.join(', '))}.</p>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button id="allow" type="submit">Allow</button></form>
<form method="post" action="/interaction/${escape(uid)}/abort"><button id="deny" type="submit">Deny</button></form>`);
}

async function readBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function passwordMatches(given, expected) {
  const a = Buffer.from(String(given));
  const b = Buffer.from(String(expected));
  return a.length === b.length && timingSafeEqual(a, b);
}

async function finish(ctx, result) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const client = details.params.client_id;
  const { prompt } = details;
  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') ctx.body = loginPage(uid, client);
    else ctx.body = consentPage(uid, client, String(details.params.scope ?? '').split(' ').filter(Boolean));
    return;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  if (action === 'login') {
    const form = new URLSearchParams(await readBody(ctx));
    const name = form.get('username') ?? '';
    const user = users.get(name);
    if (!user || !passwordMatches(form.get('password') ?? '', user.password)) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, client, 'Wrong username or password.');
      return;
    }
    await finish(ctx, { login: { accountId: name } });
    return;
  }
  if (action === 'confirm') {
    const accountId = details.session.accountId;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId: client });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
    const grantId = await grant.save();
    await finish(ctx, details.grantId ? { consent: {} } : { consent: { grantId } });
    return;
  }
  if (action === 'abort') {
    await finish(ctx, { error: 'access_denied', error_description: 'The user denied access.' });
    return;
  }
  ctx.throw(404);
}

function loopback(ctx) {
  const address = ctx.req.socket.remoteAddress ?? '';
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

function adminAllowed(ctx) {
  const expected = `Bearer ${settings.admin_token}`;
  const given = ctx.get('authorization');
  return loopback(ctx) && given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

async function admin(ctx, parts) {
  if (!adminAllowed(ctx)) ctx.throw(403, 'the admin API is for the local platform only');
  ctx.type = 'json';
  if (parts[0] === 'users' && parts.length === 1 && ctx.method === 'GET') {
    ctx.body = Object.fromEntries([...users].map(([name, user]) => [name, { groups: user.groups ?? [] }]));
    return;
  }
  if (parts[0] === 'users' && parts[2] === 'groups' && ctx.method === 'PUT') {
    const user = users.get(parts[1]);
    if (!user) ctx.throw(404, `no user ${parts[1]}`);
    const groups = JSON.parse(await readBody(ctx));
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string')) ctx.throw(400, 'a list of group names');
    user.groups = groups;
    ctx.body = { name: parts[1], groups };
    return;
  }
  if (parts[0] === 'faults' && ctx.method === 'PUT') {
    const body = JSON.parse(await readBody(ctx));
    if (![null, 'forged', 'expired'].includes(body.id_token ?? null)) ctx.throw(400, 'id_token: forged, expired or null');
    faults.idToken = body.id_token ?? null;
    ctx.body = { id_token: faults.idToken };
    return;
  }
  ctx.throw(404);
}

async function spoil(idToken, kind) {
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = privateKey;
  if (kind === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  else key = (await jose.generateKeyPair('RS256')).privateKey;
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingKey.kid }).sign(key);
}

provider.use(async (ctx, next) => {
  const parts = ctx.path.split('/').filter(Boolean);
  if (parts[0] === 'interaction' && parts.length >= 2 && parts.length <= 3) {
    await interaction(ctx, parts[1], parts[2]);
    return;
  }
  if (parts[0] === '_dev') {
    await admin(ctx, parts.slice(1));
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && faults.idToken && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token, faults.idToken) };
    faults.idToken = null;
  }
});

provider.listen(settings.port, settings.host, () => {
  console.log(`oidc provider ${settings.issuer} ready`);
});
