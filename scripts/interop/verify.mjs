// The README's Node example, run against a live Tessera: node verify.mjs ISSUER TOKEN
import { createRemoteJWKSet, jwtVerify } from "jose";

const [issuer, token] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(issuer + "/.well-known/jwks.json"));

async function verify(token) {
  const { payload } = await jwtVerify(token, jwks, {
    issuer,
    audience: issuer,
    typ: "at+jwt",
    algorithms: ["ES256", "EdDSA", "RS256"],
    clockTolerance: 5,
  });
  return payload;
}

const payload = await verify(token);
let forgedAccepted = true;
try {
  await verify(token.slice(0, -6) + "AAAAAA");
} catch {
  forgedAccepted = false;
}
if (forgedAccepted) throw new Error("jose accepted a forged signature");
console.log(`jose: verified ${payload.sub}, refused a forgery`);
