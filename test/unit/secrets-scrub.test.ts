/**
 * Secret references and the scrubber: which names a server config declares, how they resolve
 * (only the declared ones, for that server; a missing one fails with the fix), and how known
 * values are taken out of text, errors and results.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ServerConfigSchema } from '../../src/common/config.js';
import { GatehouseError } from '../../src/common/errors.js';
import { MemorySecretStore, Redacted } from '../../src/core/secrets.js';
import { SecretResolver, SecretScrubber, secretReferences, userSecretItem } from '../../src/node/secrets/resolver.js';

const stdio = ServerConfigSchema.parse({
  type: 'stdio',
  command: 'node',
  env: { API_KEY: '${secret:stripe_key}', MIXED: 'Bearer ${secret:token} and ${secret:stripe_key}', PLAIN: 'x' },
});
const http = ServerConfigSchema.parse({ type: 'http', url: 'https://mcp.example/mcp', headers: { Authorization: 'Bearer ${secret:remote}', 'X-Plain': 'y' } });

describe('secret references', () => {
  it('finds the names a server declares in its env values or headers', () => {
    expect(secretReferences(stdio)).toEqual(['stripe_key', 'token']);
    expect(secretReferences(http)).toEqual(['remote']);
  });

  it("keeps user secrets apart from Gatehouse's own keychain items, and refuses bad names", () => {
    expect(userSecretItem('stripe_key')).toBe('secret/stripe_key');
    expect(() => userSecretItem('../audit-device-key')).toThrow(/not a valid secret name/);
  });
});

describe('SecretResolver', () => {
  it('resolves only the declared secrets, into the env of a stdio server', async () => {
    const store = new MemorySecretStore();
    await store.set(userSecretItem('stripe_key'), 'sk_1');
    await store.set(userSecretItem('token'), 'tok_2');
    await store.set(userSecretItem('unrelated'), 'never-used');
    const resolver = new SecretResolver(store, new SecretScrubber());
    const resolved = await resolver.resolve('payments', stdio);
    expect(resolved.env).toEqual({ API_KEY: 'sk_1', MIXED: 'Bearer tok_2 and sk_1', PLAIN: 'x' });
    expect(resolver.scrubber.scrub('never-used')).toBe('never-used');
  });

  it('keeps HTTP header values redacted until the request', async () => {
    const store = new MemorySecretStore();
    await store.set(userSecretItem('remote'), 'r3m0te');
    const resolved = await new SecretResolver(store, new SecretScrubber()).resolve('remote', http);
    expect(resolved.headers['X-Plain']).toBe('y');
    expect(resolved.headers.Authorization).toBeInstanceOf(Redacted);
    expect(JSON.stringify(resolved)).not.toContain('r3m0te');
    expect(inspect(resolved)).not.toContain('r3m0te');
    expect((resolved.headers.Authorization as Redacted<string>).unwrap()).toBe('Bearer r3m0te');
  });

  it('fails a server whose secret is missing with the name and the command that fixes it', async () => {
    const error = await new SecretResolver(new MemorySecretStore(), new SecretScrubber()).resolve('payments', stdio).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatehouseError);
    expect((error as GatehouseError).code).toBe('secret_missing');
    expect((error as GatehouseError).message).toBe(
      'server "payments" needs the secret "stripe_key", which is not in the keychain; add it with `gatehouse secrets set stripe_key` (the server starts at its next retry)',
    );
  });
});

describe('SecretScrubber', () => {
  const scrubber = new SecretScrubber();
  scrubber.add('stripe_key', new Redacted('sk_"live"/99'));
  scrubber.add('short', new Redacted('abcdef'));

  it('replaces a known value as written, as JSON escapes it, and as a URL encodes it', () => {
    expect(scrubber.scrub('key=sk_"live"/99!')).toBe('key=[secret stripe_key redacted]!');
    expect(scrubber.scrub(JSON.stringify({ k: 'sk_"live"/99' }))).toBe('{"k":"[secret stripe_key redacted]"}');
    expect(scrubber.scrub(`?k=${encodeURIComponent('sk_"live"/99')}`)).toBe('?k=[secret stripe_key redacted]');
    expect(scrubber.scrub('abcdef abcdef')).toBe('[secret short redacted] [secret short redacted]');
  });

  it('leaves text without secrets untouched, and scrubs errors keeping their code', () => {
    expect(scrubber.scrub('nothing here')).toBe('nothing here');
    const scrubbed = scrubber.scrubError(Object.assign(new Error('bad key abcdef'), { code: -32602 })) as Error & { code: number };
    expect([scrubbed.message, scrubbed.code]).toEqual(['bad key [secret short redacted]', -32602]);
  });

  it('replaces the values known under one name without growing, and leaves other names alone', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('stripe_key', new Redacted('sk_live_1'));
    scrubber.set('upstream notes token', [new Redacted('at-1'), new Redacted('rt-1')]);
    const size = scrubber.size;
    scrubber.set('upstream notes token', [new Redacted('at-2'), new Redacted('rt-2')]);
    expect(scrubber.size).toBe(size);
    expect(scrubber.scrub('at-1 at-2 rt-2 sk_live_1')).toBe(
      'at-1 [secret upstream notes token redacted] [secret upstream notes token redacted] [secret stripe_key redacted]',
    );
  });

  it('never prints the values it holds', () => {
    expect(inspect(scrubber)).toBe('SecretScrubber(6 forms)');
    expect(JSON.stringify({ scrubber })).toBe('{"scrubber":"[redacted]"}');
  });
});
