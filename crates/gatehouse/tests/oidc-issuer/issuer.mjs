// A real OIDC server for Gatehouse's tests: oauth2-mock-server, configured,
// not reimplemented. It serves discovery, a JWKS and a client-credentials
// token endpoint, and signs RS256 tokens.
//
// Client-credentials tokens get sub = azp = the client id, and the JSON object
// in the form field `claims` merged in (how a platform adds its own claims).
// Commands on stdin: `rotate` replaces the signing key (the old one is no
// longer published), answering with a JSON line; `person {"sub":…}` sets the
// claims of whoever signs in next through the authorization code flow (the
// mock's /authorize approves at once, as if that person had logged in).
//
// Usage: node issuer.mjs [port [cert.pem key.pem]]   (HTTPS with a certificate;
// prints {"port", "issuer", "kid"} when ready)
import { OAuth2Server } from 'oauth2-mock-server';
import readline from 'node:readline';

const wanted = Number(process.argv[2] ?? 0);
const [certFile, keyFile] = process.argv.slice(3, 5);
let server;
let person = null;

async function start(port) {
  server = certFile ? new OAuth2Server(keyFile, certFile) : new OAuth2Server();
  const key = await server.issuer.keys.generate('RS256');
  server.service.on('beforeTokenSigning', (token, req) => {
    const body = req.body ?? {};
    if (body.grant_type === 'authorization_code' && person) {
      Object.assign(token.payload, person);
      return;
    }
    if (body.grant_type !== 'client_credentials') return;
    const auth = req.headers.authorization ?? '';
    const basic = auth.startsWith('Basic ')
      ? Buffer.from(auth.slice(6), 'base64').toString().split(':')[0]
      : undefined;
    const client = basic ?? body.client_id;
    if (client) {
      token.payload.sub = client;
      token.payload.azp = client;
    }
    if (body.claims) Object.assign(token.payload, JSON.parse(body.claims));
  });
  await server.start(port, '127.0.0.1');
  return key.kid;
}

const kid = await start(wanted);
const port = server.address().port;
console.log(JSON.stringify({ port, issuer: server.issuer.url, kid }));

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line.startsWith('person ')) {
    person = JSON.parse(line.slice('person '.length));
    console.log(JSON.stringify({ person: true }));
  }
  if (line.trim() === 'rotate') {
    await server.stop();
    const kid = await start(port);
    console.log(JSON.stringify({ rotated: true, kid }));
  }
});
process.stdin.on('end', async () => {
  await server.stop();
  process.exit(0);
});
