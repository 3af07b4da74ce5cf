// An OpenID provider that issues callers' access tokens as signed JWTs (OAuth client
// credentials, RFC 9068 access tokens for the audience "model-gateway", with a `groups`
// claim), for the gateway's end-to-end tests through `vigil serve`: oidc-provider (an
// OpenID Certified implementation) on 127.0.0.1, its signing keys kept in KEYS_FILE so that
// a restart with ROTATE=1 publishes a new key first and the old one after it.
// Usage: node machine-tokens.mjs PORT KEYS_FILE. Prints "idp listening on ISSUER".
import Provider from 'oidc-provider';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [port, keysFile] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const newKey = () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
};
let keys = existsSync(keysFile) ? JSON.parse(readFileSync(keysFile, 'utf8')) : [];
if (keys.length === 0 || process.env.ROTATE === '1') keys = [newKey(), ...keys];
writeFileSync(keysFile, JSON.stringify(keys));

// Callers: an analyst's app and a teller's app.
const groupsOf = { 'analyst-app': ['analysts'], 'teller-app': ['tellers'] };

const provider = new Provider(issuer, {
  clients: Object.keys(groupsOf).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  })),
  jwks: { keys },
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'https://models.bank.internal/',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'chat',
        audience: 'model-gateway',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => ({ groups: groupsOf[token.clientId] ?? [] }),
});
provider.on('server_error', (ctx, err) => console.error('idp error', err));
provider.listen(Number(port), '127.0.0.1', () => console.log(`idp listening on ${issuer}`));
