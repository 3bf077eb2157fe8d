/**
 * Runs the official MCP conformance suite (`@modelcontextprotocol/conformance`) against a server URL
 * and reads back what it found, scenario by scenario.
 *
 * The suite needs Node 22, so it runs through `npx -p node@22 -p @modelcontextprotocol/conformance@VERSION`
 * in a scratch folder under the OS temp dir (npx caches both packages after the first run). It writes one
 * `checks.json` per scenario into `-o DIR`; those files, not the coloured console output, are the source
 * of truth here. The console output only tells which scenarios were started and which crashed.
 *
 * The suite's HTTP client cannot send extra headers (0.1.16 has no flag or variable for it). When
 * `headers` is given, a header-adding forwarder on 127.0.0.1 sits between the suite and the target; it
 * passes every request and response through unchanged, except that it adds the headers and maps its own
 * Host/Origin onto the target's (so that the dns-rebinding scenario's attacker Host still reaches the
 * target untouched).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The version pinned for CI. 0.1.x speaks the 2025 era only (initialize + sessions, protocol 2025-11-25). */
export const CONFORMANCE_VERSION = '0.1.16';
/** The Node the suite needs (it declares engines >= 22); fetched by npx like any package. */
export const CONFORMANCE_NODE = 'node@22';

export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';

/** One check as the suite writes it to checks.json. */
export interface ConformanceCheck {
  id: string;
  name: string;
  description: string;
  status: CheckStatus;
  timestamp?: string;
  errorMessage?: string;
  details?: Record<string, unknown>;
}

/**
 * A scenario's outcome, from its checks:
 * - `fail`: at least one FAILURE (what the suite itself counts against a server);
 * - `warn`: no FAILURE, at least one WARNING (a SHOULD the server did not meet);
 * - `pass`: neither;
 * - `error`: the scenario was started but wrote no checks (it crashed inside the suite, or the run timed out).
 */
export type ScenarioStatus = 'pass' | 'warn' | 'fail' | 'error';

export interface ScenarioReport {
  scenario: string;
  status: ScenarioStatus;
  checks: ConformanceCheck[];
  /** `FAILURE` and `WARNING` checks, one line each, for assertion messages. */
  problems: string[];
}

export interface ConformanceOptions {
  /** Package version of @modelcontextprotocol/conformance. Default {@link CONFORMANCE_VERSION}. */
  version?: string;
  /** `all` (default: active + pending), `active`, or `pending`. Ignored when `scenarios` or `requirements` is given. */
  suite?: 'all' | 'active' | 'pending';
  /** Run only these scenarios, one suite invocation each. */
  scenarios?: string[];
  /**
   * `--spec-version`: keep only scenarios tagged for this revision (cumulative for dates). In 0.1.x this
   * filters the list only; the wire is always the 2025-11-25 handshake.
   */
  specVersion?: string;
  /**
   * `--requirements REVISION` (0.2.0 alphas only): the scenario set a revision requires, run at that
   * revision's wire, e.g. `2026-07-28` for the stateless era. Replaces `suite` and `specVersion`.
   */
  requirements?: string;
  /** Headers the target needs on every request (e.g. Authorization); added by a loopback forwarder. */
  headers?: Record<string, string>;
  /** Upper bound on the whole run, including the npx download on a cold cache. Default 120 s. */
  timeoutMs?: number;
}

/** Scenario → status, in the order the suite ran them, plus everything needed to explain a difference. */
export class ConformanceResults extends Map<string, ScenarioStatus> {
  readonly reports = new Map<string, ScenarioReport>();
  constructor(
    readonly version: string,
    readonly durationMs: number,
    readonly exitCode: number | null,
    readonly timedOut: boolean,
    readonly output: string,
  ) {
    super();
  }

  add(report: ScenarioReport): void {
    this.set(report.scenario, report.status);
    this.reports.set(report.scenario, report);
  }

  /** `scenario: status` per line, with the failing or warning checks under it: for test failure messages. */
  describe(): string {
    const lines: string[] = [];
    for (const [scenario, status] of this) {
      lines.push(`${scenario}: ${status}`);
      for (const p of this.reports.get(scenario)?.problems ?? []) lines.push(`    ${p}`);
    }
    return lines.join('\n');
  }

  /** The non-INFO checks of a scenario as `id=STATUS`, sorted: what two runs must share to count as the same result. */
  verdicts(scenario: string): string[] {
    const checks = this.reports.get(scenario)?.checks ?? [];
    return checks
      .filter((c) => c.status !== 'INFO')
      .map((c) => `${c.id}=${c.status}`)
      .sort();
  }
}

export function statusOf(checks: readonly ConformanceCheck[]): ScenarioStatus {
  if (checks.length === 0) return 'error';
  if (checks.some((c) => c.status === 'FAILURE')) return 'fail';
  if (checks.some((c) => c.status === 'WARNING')) return 'warn';
  return 'pass';
}

/** Runs the suite's server scenarios against `url` and returns one status per scenario. Never throws for a failing server. */
export async function runConformance(url: string, opts: ConformanceOptions = {}): Promise<ConformanceResults> {
  const version = opts.version ?? CONFORMANCE_VERSION;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const started = Date.now();
  const deadline = started + timeoutMs;
  const work = mkdtempSync(join(tmpdir(), 'gh-conformance-'));
  const forwarder = opts.headers ? await startHeaderForwarder(new URL(url), opts.headers) : undefined;
  const target = forwarder?.url ?? url;

  try {
    const invocations: string[][] = [];
    const base = ['server', '--url', target, '-o', join(work, 'results')];
    if (opts.scenarios) {
      for (const scenario of opts.scenarios) invocations.push([...base, '--scenario', scenario]);
    } else if (opts.requirements) {
      invocations.push([...base, '--requirements', opts.requirements]);
    } else {
      const args = [...base, '--suite', opts.suite ?? 'all'];
      if (opts.specVersion) args.push('--spec-version', opts.specVersion);
      invocations.push(args);
    }

    let output = '';
    let exitCode: number | null = 0;
    let timedOut = false;
    const startedScenarios: string[] = [];
    for (const args of invocations) {
      const run = await runSuite(version, args, work, deadline - Date.now());
      output += run.output;
      if (exitCode === 0 || run.exitCode === null) exitCode = run.exitCode;
      timedOut ||= run.timedOut;
      const scenarioArg = args.indexOf('--scenario');
      if (scenarioArg !== -1) startedScenarios.push(args[scenarioArg + 1]!);
      else startedScenarios.push(...scenariosStarted(run.output));
      if (timedOut) break;
    }

    const results = new ConformanceResults(version, Date.now() - started, exitCode, timedOut, output);
    const written = readCheckFiles(join(work, 'results'));
    for (const scenario of startedScenarios) {
      const checks = written.get(scenario) ?? [];
      results.add({
        scenario,
        status: statusOf(checks),
        checks,
        problems: checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? c.description}`),
      });
    }
    // Scenarios whose checks exist but that the console output did not name (should not happen; never drop one).
    for (const [scenario, checks] of written) {
      if (!results.has(scenario)) {
        results.add({ scenario, status: statusOf(checks), checks, problems: [] });
      }
    }
    return results;
  } finally {
    await forwarder?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The scenario names a suite (or requirements) run started, from its `=== Running scenario: NAME ===` lines. */
export function scenariosStarted(output: string): string[] {
  const names: string[] = [];
  for (const match of output.matchAll(/^=== Running scenario: (\S+) ===$/gm)) names.push(match[1]!);
  return names;
}

/** Reads `server-<scenario>-<ISO timestamp with dashes>/checks.json` files written by `-o DIR`. */
export function readCheckFiles(dir: string): Map<string, ConformanceCheck[]> {
  const out = new Map<string, ConformanceCheck[]>();
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir).sort()) {
    const match = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/.exec(entry);
    const file = join(dir, entry, 'checks.json');
    if (!match || !existsSync(file)) continue;
    const checks = JSON.parse(readFileSync(file, 'utf8')) as ConformanceCheck[];
    // A scenario name may contain a slash in later versions; the suite writes it as a path then, and the
    // match above keeps only flat names, which is every server scenario in 0.1.x.
    out.set(match[1]!, [...(out.get(match[1]!) ?? []), ...checks]);
  }
  return out;
}

interface SuiteRun {
  exitCode: number | null;
  timedOut: boolean;
  output: string;
}

function runSuite(version: string, args: string[], cwd: string, budgetMs: number): Promise<SuiteRun> {
  return new Promise((resolve, reject) => {
    if (budgetMs <= 0) {
      resolve({ exitCode: null, timedOut: true, output: '' });
      return;
    }
    const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
    const child = spawn(npx, ['-y', '-p', CONFORMANCE_NODE, '-p', `@modelcontextprotocol/conformance@${version}`, 'conformance', ...args], {
      cwd,
      // Its own process group, so that a timeout ends npx *and* the Node 22 child it starts.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', npm_config_update_notifier: 'false', npm_config_fund: 'false' },
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, budgetMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code, timedOut, output });
    });
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export interface HeaderForwarder {
  /** The target URL's path and query on the forwarder's own 127.0.0.1 origin. */
  url: string;
  close(): Promise<void>;
}

/**
 * A loopback HTTP forwarder that adds `headers` to every request it passes to `target`. Streams both
 * ways (SSE included). Host and Origin naming the forwarder itself are rewritten to name the target;
 * any other Host or Origin (an attacker's, in the dns-rebinding scenario) passes through untouched.
 */
export async function startHeaderForwarder(target: URL, headers: Record<string, string>): Promise<HeaderForwarder> {
  let ownHost = '';
  // A fresh connection per request: Node's Agent ignores the target's keep-alive timeout hint, so a reused
  // idle socket could be closed under a request, and the lost request would look like the target's fault.
  const agent = new Agent({ keepAlive: false });
  const server: Server = createServer((req, res) => {
    const out: IncomingHttpHeaders = { ...req.headers };
    if (out.host === ownHost) out.host = target.host;
    if (out.origin === `http://${ownHost}`) out.origin = target.origin;
    for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
    const upstream = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: out, agent }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, upstreamRes.headers);
      res.flushHeaders();
      upstreamRes.pipe(res);
    });
    upstream.on('error', (error) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`forwarder: ${error.message}`);
      } else {
        res.destroy();
      }
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  ownHost = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `http://${ownHost}${target.pathname}${target.search}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}
