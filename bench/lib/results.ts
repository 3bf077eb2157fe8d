/** The shape of one benchmark run, as written to dist/bench/results.json and rendered by report.ts. */
import type { AuditBenchResult } from '../audit.js';
import type { QuotaStageBenchResult } from '../approvals.js';
import type { PolicyBenchResult } from '../policy.js';
import type { AuditResult } from '../scenarios/audit.js';
import type { CatalogResult } from '../scenarios/catalog.js';
import type { SearchBenchResult } from '../scenarios/search.js';
import type { InProcessResult } from '../scenarios/inprocess.js';
import type { ProfileRun } from '../scenarios/profile.js';
import type { ReadyResult } from '../scenarios/ready.js';
import type { ThroughputResult } from './load.js';
import type { Summary } from './stats.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  os: string;
  loadAverage: number[];
  /** Load average when the run ended: other work on a shared machine shows here. */
  loadAverageEnd?: number[];
}

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
}

export interface TargetResult {
  id: string;
  label: string;
  kind: 'baseline' | 'gatehouse' | 'peer';
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
  machine: Machine;
  settings: Settings;
  hosts: HostResult[];
  targets: TargetResult[];
  inProcess?: InProcessResult;
  catalog?: CatalogResult;
  /** Tool search (issue 19). */
  search?: SearchBenchResult;
  ready?: ReadyResult;
  audit?: AuditResult;
  /** The audit issue's own figures (bench/audit.ts). */
  auditBench?: AuditBenchResult;
  /** The policy issue's own figures (bench/policy.ts). */
  policy?: PolicyBenchResult;
  quota?: QuotaStageBenchResult;
  profiles?: ProfileRun[];
  notes: string[];
}
