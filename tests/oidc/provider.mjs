// A real OpenID provider for cfmint's tests: the certified `oidc-provider`
// package with its development login and consent pages (any password is
// accepted; the login name becomes the subject).
//
//   node provider.mjs PORT REDIRECT_URI [POST_LOGOUT_REDIRECT_URI]
//
// Environment: CLOCK_OFFSET_SECONDS shifts the provider's clock (a negative
// offset issues ID tokens that are already expired); ISSUER names the issuer
// when the provider sits behind a test proxy on another port; FRESH_KEYS=1
// signs with a newly generated key (a key rotation), not the built-in one.
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const [port, redirectUri, postLogoutUri] = process.argv.slice(2);
const offset = Number(process.env.CLOCK_OFFSET_SECONDS || 0) * 1000;
if (offset) {
  const realNow = Date.now;
  Date.now = () => realNow() + offset;
}

const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret-0123456789abcdef0123456789`,
  redirect_uris: [redirectUri],
  post_logout_redirect_uris: postLogoutUri ? [postLogoutUri] : [],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

let jwks;
if (process.env.FRESH_KEYS === '1') {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwks = { keys: [{ ...jwk, kid: `rotated-${Date.now()}`, alg: 'RS256', use: 'sig' }] };
}

const provider = new Provider(issuer, {
  ...(jwks ? { jwks } : {}),
  // cfmint, and another client on the same provider (for audience tests).
  clients: [client('cfmint'), client('other-app')],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: id,
      name: id,
      groups: id.startsWith('teacher') ? ['teachers', 'listeners'] : ['listeners'],
    }),
  }),
  ttl: { IdToken: 300, AccessToken: 300, AuthorizationCode: 60, Session: 7200, Interaction: 7200, Grant: 7200 },
});
provider.proxy = false;

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
