/** The shape of one benchmark run, as written to dist/bench/results.json and rendered by report.ts. */
import type { AuditBenchResult } from '../audit.js';
import type { QuotaStageBenchResult } from '../approvals.js';
import type { PolicyBenchResult } from '../policy.js';
import type { AuditResult } from '../scenarios/audit.js';
import type { AuditScalePoint } from '../scenarios/auditscale.js';
import type { CatalogResult } from '../scenarios/catalog.js';
import type { Curve } from '../scenarios/curves.js';
import type { SearchBenchResult } from '../scenarios/search.js';
import type { InProcessResult } from '../scenarios/inprocess.js';
import type { TelemetryBenchResult } from '../scenarios/telemetry.js';
import type { MemoryResult } from '../scenarios/memory.js';
import type { ProfileRun } from '../scenarios/profile.js';
import type { SandboxBenchResult } from '../scenarios/sandbox.js';
import type { ServersPoint } from '../scenarios/servers.js';
import type { ThroughputResult } from './load.js';
import type { Machine, PhaseLoad } from './machine.js';
import type { Summary } from './stats.js';
import type { Target } from './targets.js';

export type { Machine, PhaseLoad };

export interface Settings {
  quick: boolean;
  latencyCalls: number;
  warmupCalls: number;
  rounds: number;
  clients: number;
  throughputMs: number;
  passes: number;
  catalogServers: number;
  catalogTools: number;
  curveClients: number[];
  serverCounts: number[];
  auditSizes: number[];
}

export interface TargetResult {
  id: string;
  label: string;
  kind: Target['kind'];
  endpoint: Target['endpoint'];
  path: string;
  era: 'legacy' | 'modern';
  latency?: Summary;
  /** CPU time of the gateway process(es) per call during the sequential run, µs. */
  latencyProxyCpuUs?: number;
  latencyError?: string;
  throughput?: ThroughputResult;
  throughputPasses?: ThroughputResult[];
  throughputError?: string;
}

export interface HostResult {
  name: string;
  version?: string;
  /** Spawn → serving with its fixture connected (ms). */
  readyMs?: number;
  /** RSS of the gateway process alone (not its fixture children), MB. */
  rssAtRestMb?: number;
  rssAfterLoadMb?: number;
  error?: string;
  notes?: string[];
}

export interface RunResults {
  startedAt: string;
  durationS?: number;
  /** The exact command line's options. */
  options: string[];
  /** `git describe` of the tree that ran, when known. */
  revision?: string;
  machine: Machine;
  settings: Settings;
  phases: PhaseLoad[];
  hosts: HostResult[];
  targets: TargetResult[];
  curves?: Curve[];
  servers?: ServersPoint[];
  memory?: MemoryResult;
  inProcess?: InProcessResult;
  /** Telemetry off against on (issue 16). */
  telemetry?: TelemetryBenchResult;
  catalog?: CatalogResult;
  /** Tool search (issue 19). */
  search?: SearchBenchResult;
  audit?: AuditResult;
  /** The audit issue's own figures (bench/audit.ts): append in both durabilities, hub ingest. */
  auditBench?: AuditBenchResult;
  auditScale?: AuditScalePoint[];
  /** The policy issue's own figures (bench/policy.ts). */
  policy?: PolicyBenchResult;
  quota?: QuotaStageBenchResult;
  profiles?: ProfileRun[];
  /** Confined against unconfined servers (issue 15). */
  sandbox?: SandboxBenchResult;
  notes: string[];
}
