// Local OpenID Connect provider standing in for Google (tests and `make run`).
//
//   node tests/oidc/server.js PORT
//
// Listens on 127.0.0.1:PORT, issuer http://localhost:PORT, prints "ready" once listening,
// exits 0 on SIGTERM/SIGINT. Discovery, JWKS, /authorize and /userinfo come from
// oauth2-mock-server; the authorization_code grant of /token is answered here so that it
// behaves like Google's: single-use codes, mandatory PKCE (S256), Google's id_token claims.
//
// /authorize query: login_hint (e-mail), nonce, state,
// code_challenge + code_challenge_method=S256 (required), redirect_uri, client_id.
// Without login_hint (or with an empty one) /authorize answers a sign-in page where a person
// chooses who to be (plain HTML, no script): an e-mail field (id "email") with its submit button
// (id "signin") and a few suggested accounts as buttons; each form GETs /authorize again with
// the same parameters and the chosen login_hint, which then redirects back as below.
// Test e-mails: local part "unverified…" -> email_verified false;
//               local part "denied…"     -> redirect with error=access_denied;
//               local part "wrongazp…"   -> id_token with azp of another client (aud still ours);
//               local part "extrakey…"   -> id_token signed with the newest extra key (below),
//                                           also after that key was withdrawn from /jwks.
//
// Signing keys, for key-rotation tests (the usual key never changes while the server runs):
//   POST   /test/keys       adds an extra RS256 key to /jwks; answers {"kid": "…"}
//   DELETE /test/keys/KID   withdraws that key from /jwks (it can still sign "extrakey…" tokens,
//                           as a leaked key could); 204
//
// Accounts: the sub of an address is a hash of it, unless a test says otherwise:
//   PUT    /test/subjects/EMAIL  {"sub": "…"}: from now on EMAIL signs in with that sub, as another
//                                Google account that was given the same address would; 204
//   DELETE /test/subjects/EMAIL  back to the usual sub; 204

import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: node server.js PORT\n');
  process.exit(2);
}

const CODE_TTL_MS = 10 * 60 * 1000;
const TOKEN_TTL_S = 3600;
const MAX_BODY = 64 * 1024;

const issuer = new OAuth2Issuer();
issuer.url = `http://localhost:${port}`;
const mainKid = (await issuer.keys.generate('RS256')).kid;
const service = new OAuth2Service(issuer);
const extraKids = [];          // added by POST /test/keys, oldest first
const withdrawnKids = new Set(); // not published in /jwks any more
const subjects = new Map();       // e-mail -> sub set by PUT /test/subjects/EMAIL

// code -> { email, nonce, challenge, clientId, redirectUri, expires }
const codes = new Map();

function identity(rawEmail) {
  let email = String(rawEmail || 'dev@example.com').trim().toLowerCase();
  if (!email.includes('@')) email = `${email}@example.com`;
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const hex = createHash('sha256').update(email).digest('hex');
  // Google's sub is a stable 21-digit decimal string.
  const sub = subjects.get(email)
    ?? '1' + (BigInt(`0x${hex.slice(0, 20)}`) % 10n ** 20n).toString().padStart(20, '0');
  const words = local.split(/[._+-]+/).filter(Boolean)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1));
  const name = words.join(' ') || local;
  return {
    sub, email, local, domain, name,
    given_name: words[0] || local,
    family_name: words.slice(1).join(' ') || undefined,
    email_verified: !local.startsWith('unverified'),
    denied: local.startsWith('denied'),
    wrongAzp: local.startsWith('wrongazp'),
    extraKey: local.startsWith('extrakey'),
    // Opaque, like Google's, and short whatever the address (id_tokens stay small).
    picture: `https://example.com/avatar/${hex.slice(0, 16)}.png`,
    hd: domain === 'gmail.com' ? undefined : domain,
  };
}

service.on('beforeAuthorizeRedirect', ({ url }, req) => {
  const code = url.searchParams.get('code');
  if (!code) return; // the library already put an error in the redirect
  const q = req.query;
  const fail = (error, description) => {
    url.searchParams.delete('code');
    url.searchParams.set('error', error);
    if (description) url.searchParams.set('error_description', description);
  };
  const who = identity(typeof q.login_hint === 'string' ? q.login_hint : undefined);
  if (who.denied) return fail('access_denied');
  if (typeof q.client_id !== 'string' || q.client_id === '') {
    return fail('invalid_request', 'Missing required parameter: client_id');
  }
  if (typeof q.code_challenge !== 'string' || q.code_challenge_method !== 'S256') {
    return fail('invalid_request', 'code_challenge with code_challenge_method=S256 is required');
  }
  codes.set(code, {
    email: who.email,
    nonce: typeof q.nonce === 'string' ? q.nonce : undefined,
    challenge: q.code_challenge,
    clientId: q.client_id,
    redirectUri: q.redirect_uri,
    expires: Date.now() + CODE_TTL_MS,
  });
});

// Accounts offered on the sign-in page; admin@example.com is make run's bootstrap admin.
const SUGGESTED = ['admin@example.com', 'dev@example.com', 'alice@example.com', 'bob@example.com'];

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

// The sign-in page of an /authorize request without login_hint: every other parameter of the
// request goes back as a hidden field of each form.
function chooser(res, params) {
  const hidden = [...params].filter(([name]) => name !== 'login_hint')
    .map(([name, value]) =>
      `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n      ');
  const accounts = SUGGESTED.map((email) => `
    <li><form method="get" action="/authorize">
      ${hidden}
      <input type="hidden" name="login_hint" value="${escapeHtml(email)}">
      <button type="submit" class="account">${escapeHtml(email)}</button>
    </form></li>`).join('');
  const html = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in - local identity provider</title>
</head>
<body>
  <main>
    <h1>Sign in</h1>
    <p>This local provider stands in for Google: choose who to be. Addresses starting with
      "denied" refuse the sign-in, "unverified" ones have an unverified e-mail.</p>
    <form method="get" action="/authorize">
      ${hidden}
      <label for="email">E-mail address</label>
      <input id="email" name="login_hint" type="email" required autocomplete="email">
      <button id="signin" type="submit">Sign in</button>
    </form>
    <h2>Or continue as</h2>
    <ul>${accounts}
    </ul>
  </main>
</body>
</html>
`;
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Cache-Control': 'no-store',
    'X-Frame-Options': 'DENY',
  });
  res.end(html);
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function clientCredentials(req, params) {
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Basic ')) {
    const dec = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) {
      try {
        return {
          id: decodeURIComponent(dec.slice(0, i)),
          secret: decodeURIComponent(dec.slice(i + 1)),
        };
      } catch {
        return {};
      }
    }
  }
  return { id: params.get('client_id'), secret: params.get('client_secret') };
}

async function tokenEndpoint(req, res) {
  let params;
  try {
    params = new URLSearchParams(await readBody(req));
  } catch {
    return send(res, 413, { error: 'invalid_request' });
  }
  if (params.get('grant_type') !== 'authorization_code') {
    return send(res, 400, { error: 'unsupported_grant_type' });
  }
  const code = params.get('code') || '';
  const grant = codes.get(code);
  codes.delete(code); // single use, like Google
  if (!grant || grant.expires < Date.now()) {
    return send(res, 400, { error: 'invalid_grant', error_description: 'Bad Request' });
  }
  const client = clientCredentials(req, params);
  if (!client.id || !client.secret) {
    return send(res, 401, { error: 'invalid_client', error_description: 'Unauthorized' });
  }
  if (client.id !== grant.clientId || params.get('redirect_uri') !== grant.redirectUri) {
    return send(res, 400, { error: 'invalid_grant', error_description: 'Bad Request' });
  }
  const verifier = params.get('code_verifier');
  if (!verifier) {
    return send(res, 400, { error: 'invalid_grant', error_description: 'Missing code verifier.' });
  }
  if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
    return send(res, 400, { error: 'invalid_grant', error_description: 'Invalid code verifier.' });
  }

  const who = identity(grant.email);
  const kid = who.extraKey && extraKids.length ? extraKids[extraKids.length - 1] : mainKid;
  const idToken = await issuer.buildToken({
    kid,
    expiresIn: TOKEN_TTL_S,
    scopesOrTransform: (_header, payload) => {
      delete payload.nbf;
      Object.assign(payload, {
        aud: client.id,
        azp: who.wrongAzp ? 'another-client-id' : client.id,
        sub: who.sub,
        email: who.email,
        email_verified: who.email_verified,
        name: who.name,
        given_name: who.given_name,
        picture: who.picture,
      });
      if (who.family_name) payload.family_name = who.family_name;
      if (who.hd) payload.hd = who.hd;
      if (grant.nonce !== undefined) payload.nonce = grant.nonce;
    },
  });
  return send(res, 200, {
    access_token: `ya29.mock-${randomUUID()}`,
    expires_in: TOKEN_TTL_S - 1,
    scope: 'openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile',
    token_type: 'Bearer',
    id_token: idToken,
  });
}

// The published keys: every key but the withdrawn ones (public halves only).
function jwks(res) {
  const keys = issuer.keys.toJSON().filter((k) => !withdrawnKids.has(k.kid));
  send(res, 200, { keys });
}

async function addKey(res) {
  const { kid } = await issuer.keys.generate('RS256');
  extraKids.push(kid);
  send(res, 200, { kid });
}

async function setSubject(req, res, email) {
  let sub;
  try {
    ({ sub } = JSON.parse(await readBody(req)));
  } catch {
    return send(res, 400, { error: 'invalid_request' });
  }
  if (typeof sub !== 'string' || sub === '') return send(res, 400, { error: 'sub is required' });
  subjects.set(email.trim().toLowerCase(), sub);
  res.writeHead(204);
  return res.end();
}

function withdrawKey(res, kid) {
  if (!extraKids.includes(kid)) return send(res, 404, { error: 'unknown kid' });
  withdrawnKids.add(kid);
  res.writeHead(204);
  return res.end();
}

const server = createServer((req, res) => {
  const path = (req.url || '').split('?')[0];
  if (req.method === 'GET' && path === '/jwks') return jwks(res);
  if (req.method === 'GET' && path === '/authorize') {
    const params = new URL(req.url, issuer.url).searchParams;
    if (!params.get('login_hint')) return chooser(res, params);
  }
  if (req.method === 'POST' && path === '/test/keys') {
    addKey(res).catch((err) => {
      process.stderr.write(`key generation: ${err.stack || err}\n`);
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
    });
    return;
  }
  if (req.method === 'DELETE' && path.startsWith('/test/keys/')) {
    return withdrawKey(res, decodeURIComponent(path.slice('/test/keys/'.length)));
  }
  if (path.startsWith('/test/subjects/')) {
    const email = decodeURIComponent(path.slice('/test/subjects/'.length));
    if (req.method === 'PUT') {
      setSubject(req, res, email).catch((err) => {
        process.stderr.write(`subjects: ${err.stack || err}\n`);
        if (!res.headersSent) send(res, 500, { error: 'server_error' });
      });
      return;
    }
    if (req.method === 'DELETE') {
      subjects.delete(email.trim().toLowerCase());
      res.writeHead(204);
      return res.end();
    }
  }
  if (req.method === 'POST' && path === '/token') {
    tokenEndpoint(req, res).catch((err) => {
      process.stderr.write(`token endpoint: ${err.stack || err}\n`);
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
    });
    return;
  }
  service.requestHandler(req, res);
});

// Forget expired codes now and then.
setInterval(() => {
  const now = Date.now();
  for (const [code, grant] of codes) if (grant.expires < now) codes.delete(code);
}, 60 * 1000).unref();

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.on('error', (err) => {
  process.stderr.write(`oidc: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
