/**
 * The machine, and how busy it was while each phase ran: the machine is shared, so every phase
 * records the load average and how much of the CPUs other processes used meanwhile.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';

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

export interface PhaseLoad {
  phase: string;
  seconds: number;
  /** 1-minute load average when the phase started and ended. */
  loadStart: number;
  loadEnd: number;
  /** Share of all CPUs busy during the phase (this run's processes included), 0..1. */
  busy?: number;
  failed?: string;
}

export function machine(): Machine {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux.
  }
  return { nproc: cpus().length, cpuModel, memoryGb: totalmem() / 1024 ** 3, node: process.version, os: `${osType()} ${release()}`, loadAverage: loadavg() };
}

/** Busy and total jiffies of all CPUs (Linux), to compute how busy the machine was between two reads. */
function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Starts measuring a phase; call the result when it ends. */
export function startPhase(phase: string): (failed?: string) => PhaseLoad {
  const t0 = performance.now();
  const load0 = loadavg()[0] ?? 0;
  const cpu0 = cpuTimes();
  return (failed) => {
    const cpu1 = cpuTimes();
    const busy = cpu0 && cpu1 && cpu1.total > cpu0.total ? (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total) : undefined;
    return {
      phase,
      seconds: (performance.now() - t0) / 1000,
      loadStart: load0,
      loadEnd: loadavg()[0] ?? 0,
      ...(busy !== undefined ? { busy } : {}),
      ...(failed ? { failed } : {}),
    };
  };
}
