/**
 * Ed25519 keys for policy bundles. Files are PEM (PKCS#8 for private keys, SPKI for public keys),
 * so that admins can also handle them with openssl or keep them in an HSM-backed tool. A key's id
 * is its RFC 7638 JWK thumbprint (SHA-256), computed from the key itself and never taken from what
 * a bundle claims.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  importJWK,
  importPKCS8,
  importSPKI,
  type CryptoKey,
  type JWK,
} from 'jose';

export const ALG = 'Ed25519';

export interface PublicKeyInfo {
  kid: string;
  key: CryptoKey;
  /** The public key as a JWK (kty OKP, crv Ed25519, x). */
  jwk: JWK;
}

export interface SigningKey extends PublicKeyInfo {
  privateKey: CryptoKey;
}

async function thumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }, 'sha256');
}

export async function publicKeyFromJwk(jwk: unknown): Promise<PublicKeyInfo> {
  const j = jwk as JWK;
  if (typeof j !== 'object' || j === null || j.kty !== 'OKP' || j.crv !== 'Ed25519' || typeof j.x !== 'string' || 'd' in j) {
    throw new Error('not an Ed25519 public key (expected a JWK with kty "OKP", crv "Ed25519" and x, and no private part)');
  }
  const clean: JWK = { kty: 'OKP', crv: 'Ed25519', x: j.x };
  return { kid: await thumbprint(clean), key: (await importJWK(clean, ALG)) as CryptoKey, jwk: clean };
}

function checkEd25519(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ed25519')
    throw new Error(`${what} is a ${key.asymmetricKeyType ?? 'symmetric'} key; policy keys are Ed25519 (gatehouse policy keygen)`);
}

/** A public key from PEM text (SPKI); a private key's PEM is refused, so that it is never put where a public key belongs. */
export async function publicKeyFromPem(pem: string, what = 'the key'): Promise<PublicKeyInfo> {
  if (/PRIVATE KEY/.test(pem)) throw new Error(`${what} is a private key; give the public key (the .pub file)`);
  let object: KeyObject;
  try {
    object = createPublicKey(pem);
  } catch (error) {
    throw new Error(`${what} is not a PEM public key (${(error as Error).message})`);
  }
  checkEd25519(object, what);
  const spki = object.export({ type: 'spki', format: 'pem' }).toString();
  const key = await importSPKI(spki, ALG, { extractable: true });
  const jwk = await exportJWK(key);
  return { kid: await thumbprint(jwk), key, jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x! } };
}

export async function readPublicKeyFile(file: string): Promise<PublicKeyInfo> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return publicKeyFromPem(text, file);
}

export async function readSigningKeyFile(file: string): Promise<SigningKey> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return signingKeyFromPem(text, file);
}

export async function signingKeyFromPem(text: string, file = 'the key'): Promise<SigningKey> {
  let object: KeyObject;
  try {
    object = createPrivateKey(text);
  } catch (error) {
    throw new Error(`${file} is not a PEM private key (${(error as Error).message})`);
  }
  checkEd25519(object, file);
  const pkcs8 = object.export({ type: 'pkcs8', format: 'pem' }).toString();
  const privateKey = await importPKCS8(pkcs8, ALG);
  const pub = await publicKeyFromPem(createPublicKey(object).export({ type: 'spki', format: 'pem' }).toString(), file);
  return { ...pub, privateKey };
}

export async function generateSigningKey(): Promise<{ privatePem: string; publicPem: string; kid: string }> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privatePem: await exportPKCS8(privateKey), publicPem: await exportSPKI(publicKey), kid: await thumbprint(jwk) };
}
