// A real OpenID Provider (the npm package oidc-provider) on loopback, for coatcheck's OIDC tests.
// Configured entirely from the environment (see docs/development.md); prints one line
// `READY <issuer>` on stdout once it accepts connections. Never use it outside tests.
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
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
const settings = {
  token_delay_ms: Number(env.OIDC_TOKEN_DELAY_MS ?? 0),
  outage: false,
};

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

function signingKeys() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomBytes(8).toString('hex');
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] };
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
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
    features: {
      devInteractions: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
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

// POST /__harness/sessions/end and POST /__harness/settings (JSON, any subset of `settings`).
async function admin(request, response) {
  if (!authorized(request)) return reply(response, 401, { error: 'admin token required' });
  if (request.method !== 'POST') return reply(response, 405, { error: 'POST only' });
  if (request.url === '/__harness/sessions/end') return reply(response, 200, { ended: endAllSessions() });
  if (request.url !== '/__harness/settings') return reply(response, 404, { error: 'no such endpoint' });
  let changes;
  try {
    changes = await readJson(request);
  } catch {
    return reply(response, 400, { error: 'body must be JSON' });
  }
  for (const [name, value] of Object.entries(changes)) {
    if (!(name in settings) || typeof value !== typeof settings[name]) {
      return reply(response, 400, { error: `unknown setting or wrong type: ${name}` });
    }
  }
  Object.assign(settings, changes);
  return reply(response, 200, settings);
}

let handle = null;
const server = http.createServer((request, response) => {
  if (request.url.startsWith('/__harness/')) return void admin(request, response);
  if (settings.outage) return reply(response, 503, { error: 'temporarily_unavailable' });
  const delay = request.url.startsWith('/token') && !request.url.startsWith('/token/')
    ? settings.token_delay_ms
    : 0;
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
  handle = provider.callback();
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
