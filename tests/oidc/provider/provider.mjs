// A real OpenID Provider (the npm package oidc-provider) on loopback, for coatcheck's OIDC tests.
// Configured entirely from the environment (see docs/development.md); prints one line
// `READY <issuer>` on stdout once it accepts connections. Never use it outside tests.
import {
  constants, createHmac, generateKeyPairSync, randomBytes, sign, timingSafeEqual,
} from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function required(name) {
  const value = env[name];
  if (!value) {
    console.error(`provider.mjs: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

function seconds(name, fallback) {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`provider.mjs: ${name} must be a whole number of seconds >= 1`);
    process.exit(2);
  }
  return value;
}

function words(name) {
  return (env[name] ?? '').split(/\s+/).filter(Boolean);
}

// Settings the tests may change while the provider runs (through the admin endpoint).
// id_token_tamper / refresh_id_token_tamper: '' or what goes wrong in the ID token of every
// code / refresh answer (TAMPERS), the OpenID conformance suite's RP tests from a real OP
// (oidcc-client-test-invalid-iss, ...-refresh-token-invalid-sub, ...).
const settings = {
  token_delay_ms: Number(env.OIDC_TOKEN_DELAY_MS ?? 0),
  outage: false,
  jwks_outage: false,
  id_token_tamper: '',
  refresh_id_token_tamper: '',
};

// What the tests count: token-endpoint grants by grant_type, their errors, refresh-token
// replays (a consumed refresh token presented again), discovery and JWKS fetches.
function zeroCounters() {
  return {
    token_requests: 0,
    grants: {},
    errors: {},
    refresh_replays: 0,
    discovery_requests: 0,
    jwks_requests: 0,
  };
}
let counters = zeroCounters();

function bump(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

// A plain Map adapter: unlike the bundled LRU memory adapter it never evicts live entries
// (a long test session makes thousands) and it lets the admin endpoint end every session.
const entries = new Map();

function stored(key) {
  const entry = entries.get(key);
  if (entry && entry.expiresAt <= Date.now()) {
    entries.delete(key);
    return undefined;
  }
  return entry?.value;
}

function store(key, value, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
  entries.set(key, { value, expiresAt });
}

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    store(this.key(id), payload, expiresIn);
    if (this.model === 'Session') store(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) store(`userCode:${payload.userCode}`, id, expiresIn);
    if (payload.grantId) {
      const members = stored(`grant:${payload.grantId}`) ?? new Set();
      members.add(this.key(id));
      store(`grant:${payload.grantId}`, members);
    }
  }

  async find(id) {
    return stored(this.key(id));
  }

  async findByUid(uid) {
    const id = stored(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = stored(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = stored(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    entries.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of stored(`grant:${grantId}`) ?? []) entries.delete(key);
    entries.delete(`grant:${grantId}`);
  }
}

// Ends every provider session without telling anyone (no back-channel logout), as when the
// provider's operator wipes its sessions: session-bound refresh tokens then fail.
function endAllSessions() {
  let ended = 0;
  for (const key of [...entries.keys()]) {
    if (key.startsWith('Session:') || key.startsWith('sessionUid:')) {
      if (key.startsWith('Session:')) ended += 1;
      entries.delete(key);
    }
  }
  return ended;
}

// The default HTTP client refuses loopback addresses (an SSRF guard), so back-channel logout
// to the app under test would fail silently: lift the guard for loopback hosts only.
function loopbackFetch(url, options) {
  if (LOOPBACK_HOSTS.has(new URL(url).hostname)) {
    const { dispatcher: _ssrfGuard, ...rest } = options;
    return globalThis.fetch(url, rest);
  }
  return globalThis.fetch(url, options);
}

// Signing keys. `provider` is the one oidc-provider signs with; `rotated` keys are published
// in the JWKS after a rotation (the admin endpoint); `forged` and `forged-ec` are never
// published; `client-secret` is the HMAC key an attacker might hope the client accepts.
function newKey(type) {
  const options = type === 'rsa' ? { modulusLength: 2048 } : { namedCurve: 'P-256' };
  const { privateKey, publicKey } = generateKeyPairSync(type, options);
  return { privateKey, publicKey, kid: randomBytes(8).toString('hex') };
}

const keys = { provider: newKey('rsa'), forged: newKey('rsa'), 'forged-ec': newKey('ec') };
const published = [keys.provider];
const DEFAULT_ALG = { provider: 'RS256', rotated: 'RS256', forged: 'RS256', 'forged-ec': 'ES256' };

function publicJwk(key) {
  return { ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, use: 'sig', alg: 'RS256' };
}

function signingKeys() {
  const jwk = keys.provider.privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: keys.provider.kid, use: 'sig', alg: 'RS256' }] };
}

function base64url(value) {
  return Buffer.from(value).toString('base64url');
}

// A compact JWS over any JSON claims, synchronously (node:crypto), so an event handler can
// re-sign a token before the answer leaves. alg: RS256, PS256, ES256, HS256 or none.
function signJws(header, claims, keyName) {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const data = Buffer.from(input);
  const key = keyName === 'rotated' ? published[published.length - 1] : keys[keyName];
  let signature;
  switch (header.alg) {
    case 'none':
      signature = Buffer.alloc(0);
      break;
    case 'HS256':
      signature = createHmac('sha256', required('OIDC_CLIENT_SECRET')).update(data).digest();
      break;
    case 'RS256':
      signature = sign('sha256', data, key.privateKey);
      break;
    case 'PS256':
      signature = sign('sha256', data, {
        key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
      });
      break;
    case 'ES256':
      signature = sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
      break;
    default:
      throw new Error(`unsupported alg ${header.alg}`);
  }
  return `${input}.${base64url(signature)}`;
}

// POST /__harness/sign {claims, key?, header?}: the claims signed as given. The header
// defaults to the key's algorithm and the kid of the provider's key (forged keys claim it
// too); a header member set to null is left out.
function signRequest(body) {
  const keyName = body.key ?? 'provider';
  if (!(keyName in DEFAULT_ALG) && keyName !== 'client-secret') throw new Error(`unknown key ${keyName}`);
  if (typeof body.claims !== 'object' || body.claims === null) throw new Error('claims must be an object');
  const kid = keyName === 'rotated' ? published[published.length - 1].kid : keys.provider.kid;
  const defaults = { alg: DEFAULT_ALG[keyName] ?? 'HS256', kid };
  const header = Object.fromEntries(
    Object.entries({ ...defaults, ...(body.header ?? {}) }).filter(([, value]) => value !== null),
  );
  return { token: signJws(header, body.claims, keyName) };
}

function decodePart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString());
}

// What a tamper does to an ID token's header and claims, and which key signs it again: the
// claim changes keep the provider's own key, so only the RP's claim checks can catch them.
const TAMPERS = {
  iss: (h, c) => { c.iss = 'https://other-issuer.example'; },
  sub: (h, c) => { c.sub = `${c.sub}-someone-else`; },
  aud: (h, c) => { c.aud = 'another-client'; },
  azp: (h, c) => { c.aud = [c.aud, 'another-client']; c.azp = 'another-client'; },
  nonce: (h, c) => { c.nonce = 'not-the-nonce-sent'; },
  'missing-sub': (h, c) => { delete c.sub; },
  'missing-aud': (h, c) => { delete c.aud; },
  'missing-iat': (h, c) => { delete c.iat; },
  expired: (h, c) => { c.iat -= 7200; c.exp = c.iat + 3600; },
  // As from a provider that skipped asking for the credentials again (prompt=login).
  'auth-time-old': (h, c) => { c.auth_time = (c.auth_time ?? c.iat) - 3600; },
  'email-unverified': (h, c) => { c.email_verified = false; },
  'iat-future': (h, c) => { c.iat += 3600; c.exp += 3600; },
  'kid-absent': (h) => { delete h.kid; },
  'sig-forged': () => 'forged',
  'sig-none': (h) => { h.alg = 'none'; },
  'sig-hs256': (h) => { h.alg = 'HS256'; return 'client-secret'; },
  'sig-es256': (h) => { h.alg = 'ES256'; return 'forged-ec'; },
  // Signed with the newest key published by a rotation, as after a real key rotation.
  'sig-rotated': (h) => { h.kid = published[published.length - 1].kid; return 'rotated'; },
};

function tamperIdToken(idToken, tamper) {
  const [headerPart, claimsPart] = idToken.split('.');
  const header = decodePart(headerPart);
  const claims = decodePart(claimsPart);
  const keyName = TAMPERS[tamper](header, claims) ?? 'provider';
  return signJws(header, claims, keyName);
}

function configuration() {
  const client = {
    client_id: required('OIDC_CLIENT_ID'),
    client_secret: required('OIDC_CLIENT_SECRET'),
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: words('OIDC_REDIRECT_URIS'),
    post_logout_redirect_uris: words('OIDC_POST_LOGOUT_REDIRECT_URIS'),
  };
  if (env.OIDC_BACKCHANNEL_LOGOUT_URI) {
    client.backchannel_logout_uri = env.OIDC_BACKCHANNEL_LOGOUT_URI;
    client.backchannel_logout_session_required = true;
  }
  const rotate = (env.OIDC_ROTATE_REFRESH_TOKENS ?? '1') !== '0';
  return {
    adapter: MapAdapter,
    clients: [client],
    jwks: signingKeys(),
    cookies: { keys: [randomBytes(32).toString('hex')] },
    clockTolerance: 0,
    // OIDC_ID_TOKEN_CLAIMS=1: the scopes' claims (name, email) in the ID token too, as
    // Keycloak and Auth0 put them; by default oidc-provider keeps them for userinfo.
    conformIdTokenClaims: (env.OIDC_ID_TOKEN_CLAIMS ?? '0') !== '1',
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: (env.OIDC_RP_INITIATED_LOGOUT ?? '1') !== '0' },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    ttl: {
      AccessToken: seconds('OIDC_ACCESS_TOKEN_TTL', 5),
      Session: seconds('OIDC_SESSION_TTL', 3600),
    },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },
    // Refresh tokens without offline_access, bound to the provider session: they die with it.
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken() {
      return rotate;
    },
    // Consent is pre-approved: every requested scope but offline_access is granted.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
      const grant = grantId
        ? await oidc.provider.Grant.find(grantId)
        : new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      const scopes = [...oidc.requestParamScopes].filter((scope) => scope !== 'offline_access');
      grant.addOIDCScope(scopes.join(' '));
      await grant.save();
      return grant;
    },
    fetch: loopbackFetch,
  };
}

function authorized(request) {
  const token = env.OIDC_ADMIN_TOKEN;
  if (!token) return false;
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(request.headers.authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function readJson(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {});
      } catch (error) {
        reject(error);
      }
    });
  });
}

function reply(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

// The test-only endpoints, all POST with a JSON body and the admin token:
//   /__harness/sessions/end   end every provider session silently
//   /__harness/settings       change any subset of `settings`; answers them all
//   /__harness/counters       the counters; {"reset": true} zeroes them first
//   /__harness/sign           sign claims (signRequest)
//   /__harness/keys/rotate    publish a new signing key for /__harness/sign's key "rotated"
async function admin(request, response) {
  if (!authorized(request)) return reply(response, 401, { error: 'admin token required' });
  if (request.method !== 'POST') return reply(response, 405, { error: 'POST only' });
  let body;
  try {
    body = await readJson(request);
  } catch {
    return reply(response, 400, { error: 'body must be JSON' });
  }
  switch (request.url) {
    case '/__harness/sessions/end':
      return reply(response, 200, { ended: endAllSessions() });
    case '/__harness/counters':
      if (body.reset === true) counters = zeroCounters();
      return reply(response, 200, counters);
    case '/__harness/keys/rotate': {
      const key = newKey('rsa');
      published.push(key);
      return reply(response, 200, { kid: key.kid });
    }
    case '/__harness/sign':
      try {
        return reply(response, 200, signRequest(body));
      } catch (error) {
        return reply(response, 400, { error: error.message });
      }
    case '/__harness/settings':
      break;
    default:
      return reply(response, 404, { error: 'no such endpoint' });
  }
  for (const [name, value] of Object.entries(body)) {
    if (!(name in settings) || typeof value !== typeof settings[name]) {
      return reply(response, 400, { error: `unknown setting or wrong type: ${name}` });
    }
  }
  for (const name of ['id_token_tamper', 'refresh_id_token_tamper']) {
    if (name in body && body[name] !== '' && !(body[name] in TAMPERS)) {
      return reply(response, 400, { error: `${name}: "" or one of ${Object.keys(TAMPERS)}` });
    }
  }
  Object.assign(settings, body);
  return reply(response, 200, settings);
}

// GET /jwks: the provider's own key set, plus the keys published by rotations.
function answerJwks(response) {
  response.writeHead(200, { 'content-type': 'application/jwk-set+json' });
  response.end(JSON.stringify({ keys: published.map(publicJwk) }));
}

let handle = null;
const server = http.createServer((request, response) => {
  if (request.url.startsWith('/__harness/')) return void admin(request, response);
  const path = request.url.split('?')[0];
  if (path === '/.well-known/openid-configuration') counters.discovery_requests += 1;
  if (path === '/jwks') counters.jwks_requests += 1;
  if (path === '/token') counters.token_requests += 1;
  if (settings.outage) return reply(response, 503, { error: 'temporarily_unavailable' });
  if (settings.jwks_outage && path === '/jwks') return reply(response, 503, { error: 'down' });
  if (path === '/jwks' && published.length > 1) return answerJwks(response);
  const delay = path === '/token' ? settings.token_delay_ms : 0;
  if (delay > 0) return void setTimeout(() => handle(request, response), delay);
  return handle(request, response);
});

server.listen(Number(env.OIDC_PORT ?? 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration());
  // Failed deliveries are otherwise silent: the log the fixture keeps shows them.
  provider.on('backchannel.error', (_ctx, error, client, accountId, sid) => {
    console.error(`backchannel.error client=${client.clientId} sid=${sid}: ${error.message}`);
  });
  // Emitted after the grant handler set the answer and before it is sent, so the tamper
  // switch can still change the ID token.
  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type;
    bump(counters.grants, grantType);
    const tamper = grantType === 'refresh_token'
      ? settings.refresh_id_token_tamper
      : grantType === 'authorization_code' && settings.id_token_tamper;
    if (tamper && ctx.body?.id_token) ctx.body.id_token = tamperIdToken(ctx.body.id_token, tamper);
  });
  provider.on('grant.error', (ctx, error) => {
    const grantType = ctx.oidc?.params?.grant_type ?? 'unknown';
    bump(counters.errors, `${grantType}:${error.error}`);
    if (grantType === 'refresh_token' && /already used/.test(error.error_detail ?? '')) {
      counters.refresh_replays += 1;
    }
  });
  handle = provider.callback();
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
