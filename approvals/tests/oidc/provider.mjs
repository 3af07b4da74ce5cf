// The OpenID provider the approvers' sign-in test signs in against: oidc-provider (an
// OpenID Certified implementation) on 127.0.0.1, with one public client that must use PKCE
// (S256), its own login and consent pages (any password is accepted: this is a test IdP),
// and ID tokens carrying email and groups. Usage: node provider.mjs PORT REDIRECT_URI.
// Prints "idp listening on ISSUER" once it accepts connections.
import Provider from 'oidc-provider';

const [port, redirect] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

// Who is in which group: risk officers approve; everyone else is an analyst.
const groupsOf = (id) => (id.startsWith('officer') ? ['risk-officers'] : ['analysts']);

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'vigil-approvals',
    token_endpoint_auth_method: 'none',
    redirect_uris: [redirect],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  // Scope claims go into the ID token itself, which is what the service verifies.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@bank.test`, email_verified: true, groups: groupsOf(id) }),
  }),
  cookies: { keys: ['vigil-test-idp-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});
// Quiet: the dev-interaction and key warnings are expected in a test.
provider.on('server_error', (ctx, err) => console.error('idp error', err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`idp listening on ${issuer}`);
});
