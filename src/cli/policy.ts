/**
 * `gatehouse policy ...`: the admin's side of managed policy. Keys, signing, checking a bundle as a
 * desktop would, running decision cases against it (for the admins' own CI), explaining one
 * decision, and pinning tool definitions into a catalog. docs/policy.md walks through them.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseOptions } from './args.js';
import { GatehouseError, errorMessage } from '../common/errors.js';
import type { PolicyStatus } from '../common/status.js';
import type { CompiledBundle } from '../core/policy/compile.js';
import { BundleEvaluator, type Verdict } from '../core/policy/evaluator.js';
import { argumentsToCedar } from '../core/policy/args.js';
import type { CatalogTool, ItemKind } from '../core/policy/model.js';
import type { Principal } from '../core/principal.js';
import { readBundleUnchecked, signBundle, signKeyList, verifyBundle, type TrustState } from '../node/policy/bundle-file.js';
import { CATALOG_FILE, parseBundleFiles, readBundleDir } from '../node/policy/content.js';
import { generateSigningKey, readPublicKeyFile, readSigningKeyFile } from '../node/policy/keys.js';
import { compileBundle } from '../core/policy/compile.js';
import { defaultPaths } from '../node/paths.js';

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export const POLICY_USAGE = `Usage: gatehouse policy <command> [options]

Commands (each has --help):
  keygen --out DIR                         an Ed25519 key pair for signing bundles (or as a root key)
  sign DIR --key KEY --version N [--expires 30d] --out FILE
                                           sign a bundle directory into one bundle file
  keylist --root KEY --key PUB... --version N [--expires 365d] --out FILE
                                           a key list: signing keys a root key vouches for (rotation)
  verify FILE --trust PUBKEY               check a bundle as a desktop would; exit 0 only if accepted
  test FILE|DIR --cases CASES              run request/expected-decision cases against a bundle
  explain FILE|DIR --user U --groups G,H --client C --tool SERVER__TOOL [--args JSON]
                                           the decision and the policies behind it
  pin DIR [--server NAME] [--write]        start the catalog's servers and compare their tools with the pins
  catalog import|lint|promote              catalogue entries people install (docs/catalog.md)`;

const HELP: Record<string, string> = {
  keygen: `Usage: gatehouse policy keygen --out DIR [--name NAME]

Writes an Ed25519 key pair: DIR/NAME.key (private, PKCS#8 PEM, mode 0600) and DIR/NAME.pub
(public, SPKI PEM). NAME defaults to "policy-signing". Prints the key id (its JWK thumbprint).
Existing files are never overwritten. Keep the private key off desktops: a root key's .pub goes
into the managed settings (policy.json "trust"), a signing key's .pub into a key list.`,
  sign: `Usage: gatehouse policy sign DIR --key KEY [--key KEY]... --version N [--expires 30d] [--keylist FILE] --out FILE

Checks the bundle directory (schema.cedarschema, *.cedar, catalog.json, roles.json, quotas.json)
exactly as a desktop will, then writes one signed bundle file. --version must be higher than every
version already published (desktops refuse anything lower). --expires takes a duration such as
12h, 30d or 8w (default 30d). Several --key options add several signatures (during a rotation).
--keylist embeds a key list (gatehouse policy keylist) for keys that are not root keys.`,
  keylist: `Usage: gatehouse policy keylist --root KEY --key PUB [--key PUB]... --version N [--expires 365d] --out FILE

Writes a key list signed by the root key: the signing keys (public .pub files) that desktops
accept on bundles that carry it (sign --keylist). Each new list needs a higher --version;
desktops refuse an older list, so a key left out of the newest list stops being trusted.`,
  verify: `Usage: gatehouse policy verify FILE --trust PUBKEY [--trust PUBKEY]... [--installed N] [--json]

Checks FILE as a desktop with these root public keys would: the key list, the signatures, the
expiry, every file against its signed hash, no unsigned file, the catalog and the Cedar policies.
--installed N also applies the rollback rule against an installed version N.
Exits 0 only if the bundle would be accepted; otherwise prints the reason code and why.`,
  test: `Usage: gatehouse policy test FILE|DIR --cases CASES [--json]

Runs each case in CASES (JSON) against the bundle file (or a bundle directory, before signing) and
compares the decision: "allow", "deny", "approval" (needs approval) or "hidden" (not even listed).
Signatures are not checked (use verify). Exits 1 if any case fails. A case:
  { "name": "support refunds 50 EUR", "user": "sam", "groups": ["crm-support"], "client": "cursor",
    "tool": "crm__refund", "args": { "amount": 50, "currency": "EUR" }, "expect": "allow",
    "policies": ["support-refund"] }
"prompt": "SERVER__PROMPT", or "server" with "resource": "URI", instead of "tool".
"verified": false for a client without a paired credential. "policies" is optional.`,
  explain: `Usage: gatehouse policy explain FILE|DIR --user U [--groups G,H] --client C
         (--tool SERVER__TOOL | --prompt SERVER__PROMPT) [--args JSON] [--unverified] [--json]

Shows the decision for one call (allow, deny, or approval), the policies that made it, the roles
the groups map to, the tool's catalog attributes and the arguments as Cedar sees them.
Signatures are not checked (use verify), nor live tool definitions against their pins.`,
  pin: `Usage: gatehouse policy pin DIR [--server NAME] [--write]

Starts each server of DIR/catalog.json from its launch spec, lists its tools and prints each
tool's definition hash next to the pinned one: same, changed, new (not in the catalog) or gone.
--write records the live hashes in catalog.json; new tools are added as not read-only and
destructive, so that they stay locked down until you set their attributes.
Exit 0 only when every server started and every tool matches its pin (with --write: once the
pins are recorded); 1 when a server did not start or a tool differs.`,
};

const parse = parseOptions;

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new GatehouseError('usage', `give exactly one ${what}`);
  return positionals[0]!;
}

function required<T>(value: T | undefined, flag: string): T {
  if (value === undefined) throw new GatehouseError('usage', `${flag} is required`);
  return value;
}

function positiveInt(value: string | undefined, flag: string): number {
  const n = Number(required(value, flag));
  if (!Number.isSafeInteger(n) || n < 1) throw new GatehouseError('usage', `${flag} takes a whole number from 1 up`);
  return n;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d{1,6})([smhdw])$/.exec(text);
  if (!match || Number(match[1]) === 0) throw new GatehouseError('usage', `${flag} takes a duration such as 12h, 30d or 8w`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** Cedar is a wasm module (about 4 MB): loaded only by the commands that evaluate policies. */
async function cedarEngine() {
  const { CedarEngine } = await import('../node/policy/cedar.js');
  return new CedarEngine();
}

function writeFileAtomic(file: string, text: string, mode: number): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, file);
}

export async function policyCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.out(POLICY_USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'keygen':
      return keygen(rest, io);
    case 'sign':
      return sign(rest, io);
    case 'keylist':
      return keylist(rest, io);
    case 'verify':
      return verify(rest, io);
    case 'test':
      return test(rest, io);
    case 'explain':
      return explain(rest, io);
    case 'pin':
      return pin(rest, io);
    case 'catalog': {
      const { policyCatalogCommand } = await import('./catalog.js');
      return policyCatalogCommand(rest, io);
    }
    default:
      throw new GatehouseError('usage', `unknown policy subcommand "${sub}"; run \`gatehouse policy --help\``);
  }
}

function helpWanted(sub: string, values: { help?: boolean | undefined }, io: Io): boolean {
  if (!values.help) return false;
  io.out(HELP[sub]! + '\n');
  return true;
}

async function keygen(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' }, name: { type: 'string' } });
  if (helpWanted('keygen', values, io)) return 0;
  if (positionals.length > 0) throw new GatehouseError('usage', `unexpected argument "${positionals[0]}"`);
  const dir = required(values.out, '--out');
  const name = values.name ?? 'policy-signing';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new GatehouseError('usage', '--name takes letters, digits, _ . -');
  const privateFile = path.join(dir, `${name}.key`);
  const publicFile = path.join(dir, `${name}.pub`);
  for (const file of [privateFile, publicFile]) if (existsSync(file)) throw new GatehouseError('exists', `${file} exists; keys are never overwritten`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = await generateSigningKey();
  writeFileSync(privateFile, key.privatePem, { mode: 0o600, flag: 'wx' });
  chmodSync(privateFile, 0o600);
  writeFileSync(publicFile, key.publicPem, { mode: 0o644, flag: 'wx' });
  io.out(`${key.kid}\n`);
  io.err(`wrote ${privateFile} (private: keep it off desktops) and ${publicFile}; key id ${key.kid}\n`);
  return 0;
}

async function sign(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    key: { type: 'string', multiple: true },
    version: { type: 'string' },
    expires: { type: 'string' },
    keylist: { type: 'string' },
    out: { type: 'string' },
  });
  if (helpWanted('sign', values, io)) return 0;
  const dir = one(positionals, 'bundle directory');
  const keyFiles = values.key ?? [];
  if (keyFiles.length === 0) throw new GatehouseError('usage', '--key is required');
  const version = positiveInt(values.version, '--version');
  const lifetime = parseDuration(values.expires ?? '30d', '--expires');
  const out = required(values.out, '--out');
  const files = readBundleDir(dir);
  // Refuse to sign what a desktop would refuse.
  const cedar = await cedarEngine();
  const content = parseBundleFiles(files, { dataDir: defaultPaths(io.env).dataDir });
  if (!content.ok) throw new GatehouseError('invalid', `${dir}: ${content.errors.join('; ')}`);
  const compiled = compileBundle(content.content, { manifest: { version, issuedAt: '', expiresAt: '', files: {} }, digest: '', signedBy: [] }, cedar);
  if (!compiled.ok) throw new GatehouseError('invalid', `${dir}: ${compiled.errors.join('; ')}`);
  const keys = await Promise.all(keyFiles.map((file) => readSigningKeyFile(file)));
  const keyList = values.keylist !== undefined ? readFileSync(values.keylist, 'utf8').trim() : undefined;
  const issuedAt = new Date();
  const text = await signBundle({
    files,
    keys,
    version,
    issuedAt,
    expiresAt: new Date(issuedAt.getTime() + lifetime),
    ...(keyList !== undefined ? { keyList } : {}),
  });
  writeFileAtomic(out, text, 0o644);
  const expires = new Date(issuedAt.getTime() + lifetime).toISOString();
  io.out(`signed bundle v${version} (${[...files.keys()].join(', ')}), expires ${expires}, by ${keys.map((k) => k.kid).join(', ')}: ${out}\n`);
  return 0;
}

async function keylist(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    root: { type: 'string' },
    key: { type: 'string', multiple: true },
    version: { type: 'string' },
    expires: { type: 'string' },
    out: { type: 'string' },
  });
  if (helpWanted('keylist', values, io)) return 0;
  if (positionals.length > 0) throw new GatehouseError('usage', `unexpected argument "${positionals[0]}"`);
  const root = await readSigningKeyFile(required(values.root, '--root'));
  const keys = await Promise.all((values.key ?? []).map((file) => readPublicKeyFile(file)));
  if (keys.length === 0) throw new GatehouseError('usage', '--key is required (a public key file to list)');
  const version = positiveInt(values.version, '--version');
  const lifetime = parseDuration(values.expires ?? '365d', '--expires');
  const out = required(values.out, '--out');
  const issuedAt = new Date();
  const jws = await signKeyList({ root, keys, version, issuedAt, expiresAt: new Date(issuedAt.getTime() + lifetime) });
  writeFileAtomic(out, jws + '\n', 0o644);
  io.out(`key list v${version} signed by root ${root.kid}, listing ${keys.map((k) => k.kid).join(', ')}: ${out}\n`);
  return 0;
}

async function verify(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { trust: { type: 'string', multiple: true }, installed: { type: 'string' }, json: { type: 'boolean' } });
  if (helpWanted('verify', values, io)) return 0;
  const file = one(positionals, 'bundle FILE');
  const trustFiles = values.trust ?? [];
  if (trustFiles.length === 0) throw new GatehouseError('usage', '--trust is required (a root public key file)');
  const roots = await Promise.all(trustFiles.map((f) => readPublicKeyFile(f)));
  const state: TrustState = values.installed !== undefined ? { version: positiveInt(values.installed, '--installed') } : {};
  const bytes = readBytes(file);
  const result = await verifyBundle(bytes, { roots, state, now: Date.now(), cedar: await cedarEngine(), dataDir: defaultPaths(io.env).dataDir });
  if (!result.ok) {
    if (values.json) io.out(JSON.stringify({ accepted: false, code: result.code, reason: result.reason }, null, 2) + '\n');
    io.err(`gatehouse policy verify: rejected (${result.code}): ${result.reason}\n`);
    return 1;
  }
  const m = result.bundle.manifest;
  if (values.json) {
    io.out(
      JSON.stringify(
        {
          accepted: true,
          version: m.version,
          issuedAt: m.issuedAt,
          expiresAt: m.expiresAt,
          signedBy: result.bundle.signedBy,
          files: Object.keys(m.files),
          keyList: result.keyList ? { version: result.keyList.version, signedBy: result.keyList.signedBy } : undefined,
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    io.out(
      `accepted: bundle v${m.version}, issued ${m.issuedAt}, expires ${m.expiresAt}, signed by ${result.bundle.signedBy.join(', ')}` +
        `${result.keyList ? ` (key list v${result.keyList.version} from root ${result.keyList.signedBy})` : ''}; ${result.bundle.policies.size} policies, ` +
        `${result.bundle.content.catalog.servers.size} servers in the catalog\n`,
    );
  }
  return 0;
}

function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new GatehouseError('not_found', `${file}: cannot read (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)})`);
  }
}

/** A bundle file, or a bundle directory (before signing), compiled for decisions. */
async function loadForDecisions(target: string, io: Io): Promise<{ bundle: CompiledBundle; evaluator: BundleEvaluator; label: string }> {
  const cedar = await cedarEngine();
  const dataDir = defaultPaths(io.env).dataDir;
  let isDir = false;
  try {
    isDir = statSync(target).isDirectory();
  } catch (error) {
    throw new GatehouseError('not_found', `${target}: cannot read (${(error as NodeJS.ErrnoException).code ?? errorMessage(error)})`);
  }
  if (isDir) {
    const content = parseBundleFiles(readBundleDir(target), { dataDir });
    if (!content.ok) throw new GatehouseError('invalid', `${target}: ${content.errors.join('; ')}`);
    const compiled = compileBundle(content.content, { manifest: { version: 0, issuedAt: '', expiresAt: '', files: {} }, digest: '', signedBy: [] }, cedar);
    if (!compiled.ok) throw new GatehouseError('invalid', `${target}: ${compiled.errors.join('; ')}`);
    return { bundle: compiled.bundle, evaluator: new BundleEvaluator(compiled.bundle, cedar), label: `directory ${target} (unsigned)` };
  }
  const result = readBundleUnchecked(readBytes(target), { cedar, dataDir });
  if (!result.ok) throw new GatehouseError('invalid', `${target}: ${result.code}: ${result.reason}`);
  const m = result.bundle.manifest;
  return {
    bundle: result.bundle,
    evaluator: new BundleEvaluator(result.bundle, cedar),
    label: `bundle v${m.version}, issued ${m.issuedAt}, expires ${m.expiresAt} (signatures not checked)`,
  };
}

interface Request {
  user: string;
  groups: string[];
  client: string;
  verified: boolean;
  kind: ItemKind;
  server: string;
  name: string;
  args?: Record<string, unknown>;
}

interface Decision {
  outcome: 'allow' | 'deny' | 'approval' | 'hidden';
  visible: boolean;
  verdict: Verdict;
  roles: string[];
  hiddenBecause?: string;
}

function principalOf(r: Request): Principal {
  return {
    user: { id: r.user, source: 'oidc', displayName: r.user, groups: r.groups, roles: [] },
    client: { id: `client:${r.client}`, name: r.client, verified: r.verified, transport: 'socket' },
  };
}

function decideRequest(evaluator: BundleEvaluator, r: Request): Decision {
  const principal = principalOf(r);
  const roles = evaluator.rolesOf(principal);
  const assessment = evaluator.assess(principal, roles, r.kind, r.server, r.name);
  const verdict = evaluator.decide(principal, roles, r.kind, r.server, r.name, r.args, assessment);
  const outcome = verdict.allow ? 'allow' : verdict.code === 'approval_required' ? 'approval' : 'deny';
  return { outcome, visible: assessment.visible, verdict, roles, ...(assessment.hiddenBecause ? { hiddenBecause: assessment.hiddenBecause } : {}) };
}

function splitItem(value: string, flag: string): { server: string; name: string } {
  const at = value.indexOf('__');
  if (at <= 0 || at + 2 >= value.length) throw new GatehouseError('usage', `${flag} takes SERVER__NAME, as clients see it (such as crm__refund)`);
  return { server: value.slice(0, at), name: value.slice(at + 2) };
}

async function test(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { cases: { type: 'string' }, json: { type: 'boolean' } });
  if (helpWanted('test', values, io)) return 0;
  const target = one(positionals, 'bundle FILE or directory');
  const casesFile = required(values.cases, '--cases');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(casesFile, 'utf8'));
  } catch (error) {
    throw new GatehouseError('invalid', `${casesFile}: ${errorMessage(error)}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { cases?: unknown })?.cases;
  if (!Array.isArray(list) || list.length === 0) throw new GatehouseError('invalid', `${casesFile}: expected a JSON array of cases (or { "cases": [...] })`);
  const { evaluator, label } = await loadForDecisions(target, io);
  const results: { name: string; expect: string; got: string; pass: boolean; reason: string; policies: string[] }[] = [];
  list.forEach((entry, index) => {
    const c = entry as Record<string, unknown>;
    const name = typeof c.name === 'string' ? c.name : `case ${index + 1}`;
    const where = `${casesFile}: ${name}`;
    const expect = c.expect;
    if (expect !== 'allow' && expect !== 'deny' && expect !== 'approval' && expect !== 'hidden') {
      throw new GatehouseError('invalid', `${where}: "expect" must be allow, deny, approval or hidden`);
    }
    if (typeof c.user !== 'string' || typeof c.client !== 'string') throw new GatehouseError('invalid', `${where}: "user" and "client" are required strings`);
    const groups = Array.isArray(c.groups) ? c.groups.map(String) : [];
    let item: { kind: ItemKind; server: string; name: string };
    if (typeof c.tool === 'string') item = { kind: 'tool', ...splitItem(c.tool, `${where}: "tool"`) };
    else if (typeof c.prompt === 'string') item = { kind: 'prompt', ...splitItem(c.prompt, `${where}: "prompt"`) };
    else if (typeof c.resource === 'string' && typeof c.server === 'string') item = { kind: 'resource', server: c.server, name: c.resource };
    else throw new GatehouseError('invalid', `${where}: give "tool", "prompt", or "server" and "resource"`);
    if (c.args !== undefined && (typeof c.args !== 'object' || c.args === null || Array.isArray(c.args))) {
      throw new GatehouseError('invalid', `${where}: "args" must be an object`);
    }
    const d = decideRequest(evaluator, {
      user: c.user,
      groups,
      client: c.client,
      verified: c.verified !== false,
      ...item,
      ...(c.args !== undefined ? { args: c.args as Record<string, unknown> } : {}),
    });
    const got = expect === 'hidden' ? (d.visible ? d.outcome : 'hidden') : d.outcome;
    let pass = got === expect;
    const wanted = Array.isArray(c.policies) ? c.policies.map(String).sort() : undefined;
    if (pass && wanted && JSON.stringify(wanted) !== JSON.stringify([...d.verdict.policyIds].sort())) pass = false;
    results.push({ name, expect: String(expect), got, pass, reason: d.verdict.reason, policies: d.verdict.policyIds });
  });
  const failed = results.filter((r) => !r.pass).length;
  if (values.json) {
    io.out(JSON.stringify({ bundle: label, passed: results.length - failed, failed, results }, null, 2) + '\n');
  } else {
    io.out(`${label}\n`);
    for (const r of results) {
      io.out(
        `${r.pass ? 'PASS' : 'FAIL'}  ${r.name}: ${r.pass ? r.got : `expected ${r.expect}, got ${r.got}`}` +
          `${r.pass ? '' : ` (${r.reason}; policies: ${r.policies.join(', ') || 'none'})`}\n`,
      );
    }
    io.out(`${results.length} cases: ${results.length - failed} passed, ${failed} failed\n`);
  }
  return failed === 0 ? 0 : 1;
}

async function explain(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    user: { type: 'string' },
    groups: { type: 'string' },
    client: { type: 'string' },
    tool: { type: 'string' },
    prompt: { type: 'string' },
    args: { type: 'string' },
    unverified: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (helpWanted('explain', values, io)) return 0;
  const target = one(positionals, 'bundle FILE or directory');
  const user = required(values.user, '--user');
  const client = required(values.client, '--client');
  if ((values.tool === undefined) === (values.prompt === undefined)) throw new GatehouseError('usage', 'give --tool SERVER__TOOL (or --prompt SERVER__PROMPT)');
  const kind: ItemKind = values.tool !== undefined ? 'tool' : 'prompt';
  const item = splitItem((values.tool ?? values.prompt)!, `--${kind}`);
  let callArgs: Record<string, unknown> | undefined;
  if (values.args !== undefined) {
    try {
      callArgs = JSON.parse(values.args) as Record<string, unknown>;
    } catch (error) {
      throw new GatehouseError('usage', `--args is not JSON: ${errorMessage(error)}`);
    }
    if (typeof callArgs !== 'object' || callArgs === null || Array.isArray(callArgs)) throw new GatehouseError('usage', '--args takes a JSON object');
  }
  const groups = (values.groups ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter(Boolean);
  const { bundle, evaluator, label } = await loadForDecisions(target, io);
  const request: Request = { user, groups, client, verified: !values.unverified, kind, ...item, ...(callArgs ? { args: callArgs } : {}) };
  const d = decideRequest(evaluator, request);
  const tool = kind === 'tool' ? evaluator.catalogTool(item.server, item.name) : undefined;
  const converted = kind === 'tool' || kind === 'prompt' ? argumentsToCedar(callArgs, bundle.argTypes[kind], tool?.scale ?? {}) : undefined;
  const policies = d.verdict.policyIds.map((id) => {
    const info = bundle.policies.get(id);
    return info ? `${id} (${info.file}, ${info.effect}${info.approval ? `, @approval("${info.approval}")` : ''})` : id;
  });
  if (values.json) {
    io.out(
      JSON.stringify(
        {
          decision: d.outcome,
          reason: d.verdict.reason,
          policies: d.verdict.policyIds,
          visible: d.visible,
          ...(d.hiddenBecause ? { hiddenBecause: d.hiddenBecause } : {}),
          roles: d.roles,
          ...(tool ? { catalog: tool } : {}),
          ...(converted?.ok ? { cedarArgs: converted.value } : {}),
          bundle: label,
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  const decision = d.outcome === 'approval' ? 'approval (allowed only if the person at the desktop approves it)' : d.outcome;
  const lines = [
    `decision:  ${decision}`,
    `reason:    ${d.verdict.reason}`,
    `policies:  ${policies.join('; ') || 'none'}`,
    `listed:    ${d.visible ? 'yes' : `no (${d.hiddenBecause ?? 'hidden'}): a call by name gets "unknown tool"`}`,
    `principal: User::"${user}"${d.roles.length ? ` in ${d.roles.map((r) => `Role::"${r}"`).join(', ')}` : ' (no roles)'} ` +
      `(groups: ${groups.join(', ') || 'none'}), client Client::"${client}" (${request.verified ? 'verified' : 'unverified'})`,
    kind === 'tool'
      ? `tool:      Tool::"${item.server}__${item.name}" in Server::"${item.server}" ${tool ? JSON.stringify(catalogAttributes(tool)) : '(not in the catalog)'}`
      : `prompt:    Prompt::"${item.server}__${item.name}" in Server::"${item.server}"`,
    `arguments: ${converted === undefined ? '(none)' : converted.ok ? `${JSON.stringify(converted.value)} as context.args` : `refused: ${converted.reason}`}`,
    `bundle:    ${label}`,
  ];
  io.out(lines.join('\n') + '\n');
  return 0;
}

async function pin(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { server: { type: 'string' }, write: { type: 'boolean' } });
  if (helpWanted('pin', values, io)) return 0;
  const dir = one(positionals, 'bundle directory');
  const catalogFile = path.join(dir, CATALOG_FILE);
  let raw: { servers?: Record<string, { tools?: Record<string, Record<string, unknown>> }> };
  try {
    raw = JSON.parse(readFileSync(catalogFile, 'utf8')) as typeof raw;
  } catch (error) {
    throw new GatehouseError('invalid', `${catalogFile}: ${errorMessage(error)}`);
  }
  const content = parseBundleFiles(readBundleDir(dir), { dataDir: defaultPaths(io.env).dataDir });
  if (!content.ok) throw new GatehouseError('invalid', `${dir}: ${content.errors.join('; ')}`);
  const servers = [...content.content.catalog.servers].filter(([name]) => values.server === undefined || name === values.server);
  if (servers.length === 0) {
    throw new GatehouseError('unknown_server', values.server ? `"${values.server}" is not in ${catalogFile}` : `${catalogFile} lists no servers`);
  }
  let drift = 0;
  const failed: string[] = [];
  const { readLiveTools } = await import('../node/policy/pin.js');
  for (const [name, server] of servers) {
    if (!server.launch) {
      io.out(`${name}: an entry people install; pin its tools from what the fleet sees (gatehouse policy catalog promote)\n`);
      continue;
    }
    let live: Awaited<ReturnType<typeof readLiveTools>>;
    try {
      live = await readLiveTools(name, server.launch);
    } catch (error) {
      // One server that does not start does not hide the others' results; the command fails at the end.
      failed.push(name);
      io.err(`gatehouse policy: ${errorMessage(error)}\n`);
      continue;
    }
    const rawTools = (raw.servers![name]!.tools ??= {});
    for (const tool of live) {
      const pinned = server.tools.get(tool.name);
      const state = !pinned ? 'new' : pinned.sha256 === tool.sha256 ? 'same' : 'changed';
      if (state !== 'same') drift++;
      io.out(`${name}__${tool.name}  ${state.padEnd(7)}  ${tool.sha256}\n`);
      if (values.write && state === 'changed') rawTools[tool.name]!.sha256 = tool.sha256;
      if (values.write && state === 'new') rawTools[tool.name] = { sha256: tool.sha256, readOnly: false, destructive: true, tags: [] };
    }
    for (const pinnedName of server.tools.keys()) {
      if (!live.some((t) => t.name === pinnedName)) {
        drift++;
        io.out(`${name}__${pinnedName}  gone     (the server no longer lists it)\n`);
      }
    }
  }
  if (values.write && drift > 0) {
    writeFileAtomic(catalogFile, JSON.stringify(raw, null, 2) + '\n', 0o644);
    io.err(`updated ${catalogFile}; review the attributes of new tools before signing\n`);
  }
  if (failed.length > 0) {
    io.err(`gatehouse policy: ${failed.length} of ${servers.length} catalog server(s) did not start (${failed.join(', ')}): nothing was checked for them\n`);
    return 1;
  }
  // For CI: 0 only when every live tool matches its pin (or the pins were just written).
  if (drift > 0 && !values.write) {
    io.err(`gatehouse policy: ${drift} tool(s) do not match the catalog; review them, then run again with --write\n`);
    return 1;
  }
  return 0;
}

/** A catalog tool's attributes as policies see them (and its scales, when it has any). */
function catalogAttributes(tool: CatalogTool): Record<string, unknown> {
  const scaled = Object.keys(tool.scale).length ? { scale: tool.scale } : {};
  return { read_only: tool.readOnly, destructive: tool.destructive, tags: tool.tags, ...scaled };
}

/** Lines for `gatehouse status` about the managed policy (none in plain unmanaged mode). */
export function policyStatusLines(policy: PolicyStatus): string[] {
  const lines: string[] = [];
  if (policy.state === 'fail-closed') lines.push(`policy: FAILING CLOSED (nothing is listed or callable): ${policy.reason ?? ''}`);
  else if (policy.state === 'unmanaged' && policy.reason) lines.push(`policy: ${policy.reason}`);
  else if (policy.state === 'enforcing') lines.push(`policy: bundle v${policy.version} from ${policy.source}, expires ${policy.expiresAt}`);
  if (policy.notice) lines.push(`policy: ${policy.notice}`);
  if (policy.lastRejection) lines.push(`policy: last refused: ${policy.lastRejection.source} (${policy.lastRejection.code}): ${policy.lastRejection.reason}`);
  return lines;
}
