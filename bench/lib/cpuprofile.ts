/** Reads a V8 `.cpuprofile` (from `node --cpu-prof`) into self and inclusive time per function. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionCost {
  name: string;
  where: string;
  area: string;
  selfMs: number;
  inclusiveMs: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  programMs: number;
  /** Busy time: everything but idle. */
  busyMs: number;
  byArea: { area: string; selfMs: number }[];
  functions: FunctionCost[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Which part of the stack a frame belongs to. */
export function areaOf(url: string, functionName: string): string {
  if (SPECIAL.has(functionName)) return functionName;
  if (url === '') return 'V8/native (JSON, Buffer, regexp, ...)';
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0)
    return `gatehouse: ${url
      .slice(dist + '/dist/'.length)
      .replace(/^src\//, '')
      .split('/')
      .slice(0, 2)
      .join('/')}`;
  return url;
}

function shortWhere(url: string, line: number): string {
  const nm = url.lastIndexOf('/node_modules/');
  const path = nm >= 0 ? url.slice(nm + '/node_modules/'.length) : url.includes('/dist/') ? url.slice(url.indexOf('/dist/') + 1) : url;
  return path ? `${path}:${line + 1}` : '';
}

export function summarizeProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Self time per node from the samples and their time deltas (delta i+1 closes sample i).
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}|${n.callFrame.url}|${n.callFrame.lineNumber}`;
  const costs = new Map<string, FunctionCost>();
  const cost = (n: ProfileNode): FunctionCost => {
    const key = keyOf(n);
    let c = costs.get(key);
    if (!c) {
      const name = n.callFrame.functionName || '(anonymous)';
      c = { name, where: shortWhere(n.callFrame.url, n.callFrame.lineNumber), area: areaOf(n.callFrame.url, name), selfMs: 0, inclusiveMs: 0 };
      costs.set(key, c);
    }
    return c;
  };
  // Inclusive time: each node's subtree total, counted once per function along a path (recursion).
  const subtreeUs = new Map<number, number>();
  const root = profile.nodes[0];
  const post = (id: number): number => {
    // Iterative post-order to survive deep stacks.
    const stack: { id: number; done: boolean }[] = [{ id, done: false }];
    while (stack.length) {
      const top = stack.pop()!;
      const node = byId.get(top.id)!;
      if (top.done) {
        let total = selfUs.get(top.id) ?? 0;
        for (const c of node.children ?? []) total += subtreeUs.get(c) ?? 0;
        subtreeUs.set(top.id, total);
      } else {
        stack.push({ id: top.id, done: true });
        for (const c of node.children ?? []) stack.push({ id: c, done: false });
      }
    }
    return subtreeUs.get(id) ?? 0;
  };
  if (root) post(root.id);
  const walk: { id: number; onPath: Set<string> }[] = root ? [{ id: root.id, onPath: new Set() }] : [];
  while (walk.length) {
    const { id, onPath } = walk.pop()!;
    const node = byId.get(id)!;
    const c = cost(node);
    const key = keyOf(node);
    c.selfMs += (selfUs.get(id) ?? 0) / 1000;
    let path = onPath;
    if (!onPath.has(key)) {
      c.inclusiveMs += (subtreeUs.get(id) ?? 0) / 1000;
      path = new Set(onPath).add(key);
    }
    for (const child of node.children ?? []) walk.push({ id: child, onPath: path });
  }
  const functions = [...costs.values()].filter((c) => c.name !== '(root)');
  const special = (name: string) => functions.filter((f) => f.name === name).reduce((a, f) => a + f.selfMs, 0);
  const idleMs = special('(idle)');
  const areas = new Map<string, number>();
  for (const f of functions) if (f.name !== '(idle)') areas.set(f.area, (areas.get(f.area) ?? 0) + f.selfMs);
  return {
    totalMs,
    idleMs,
    gcMs: special('(garbage collector)'),
    programMs: special('(program)'),
    busyMs: totalMs - idleMs,
    byArea: [...areas.entries()].map(([area, selfMs]) => ({ area, selfMs })).sort((a, b) => b.selfMs - a.selfMs),
    functions,
  };
}

/** Where a profiled daemon's busy time goes, by the part of the call path that spent it. */
export const COST_CENTRES = [
  'audit (seal, digests, SQLite commit, index pass)',
  'governance chain (identity, policy, quota, approval, routing)',
  'downstream MCP (SDK server, request dispatch)',
  'upstream MCP (SDK client, request/response matching)',
  'schema validation (zod)',
  'transport: sockets, pipes, HTTP, JSON framing',
  'garbage collection',
  'start-up (module loading, compilation)',
  'other',
] as const;
export type CostCentre = (typeof COST_CENTRES)[number];

function centreOf(f: FunctionCost): CostCentre | undefined {
  if (f.name === '(idle)' || f.name === '(root)') return undefined;
  if (f.name === '(garbage collector)') return 'garbage collection';
  const where = f.where;
  if (f.area === 'zod') return 'schema validation (zod)';
  if (
    /compileSourceTextModule|compileForInternalLoader|wrapSafe|parseSource|internalModule|defaultLoad|getPackageScopeConfig|realpathSync|ModuleWrap/.test(
      f.name,
    ) ||
    /modules\/esm|modules\/cjs/.test(where)
  ) {
    return 'start-up (module loading, compilation)';
  }
  if (f.area === 'better-sqlite3' || /gatehouse: (node\/audit|core\/audit|core\/digest)/.test(f.area) || f.name === 'Hash' || /crypto\/hash/.test(where))
    return 'audit (seal, digests, SQLite commit, index pass)';
  if (
    /gatehouse: core\/(stages|gateway|chain|policy|governance|identity|quotas|approvals|catalog)|gatehouse: node\/(local-identity|client-registry|quotas|approvals)/.test(
      f.area,
    )
  ) {
    return 'governance chain (identity, policy, quota, approval, routing)';
  }
  if (f.area === '@modelcontextprotocol/server' || (/gatehouse: node\/downstream/.test(f.area) && /mcp-server|sessions/.test(where)))
    return 'downstream MCP (SDK server, request dispatch)';
  if (f.area === '@modelcontextprotocol/client' || /gatehouse: node\/upstream/.test(f.area)) return 'upstream MCP (SDK client, request/response matching)';
  if (
    /gatehouse: node\/(line-transport|downstream)/.test(f.area) ||
    /^node: (net|stream|_http|http|buffer|events|string_decoder)/.test(f.area) ||
    /stream_base_commons|streams\/|_http_|deps\/undici|internal\/(webstreams|url|abort_controller|event_target|worker\/js_transferable)/.test(where) ||
    /^(writeUtf8String|writev|writeBuffer|utf8Slice|utf8Write|parse|stringify|JSONParse|JSONStringify|read|onStreamRead)$/.test(f.name)
  ) {
    return 'transport: sockets, pipes, HTTP, JSON framing';
  }
  return 'other';
}

/** Self time per cost centre, in ms, with each centre's share of the busy time. */
export function costCentres(summary: ProfileSummary): { centre: CostCentre; ms: number; share: number }[] {
  const totals = new Map<CostCentre, number>();
  for (const f of summary.functions) {
    const c = centreOf(f);
    if (c) totals.set(c, (totals.get(c) ?? 0) + f.selfMs);
  }
  const busy = [...totals.values()].reduce((a, b) => a + b, 0) || 1;
  return COST_CENTRES.map((centre) => ({ centre, ms: totals.get(centre) ?? 0, share: (totals.get(centre) ?? 0) / busy }));
}
