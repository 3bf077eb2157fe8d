/**
 * `audit.verify` for the console: the same check as `gatehouse audit verify`, on a read-only
 * connection, in a worker thread so that calls keep flowing while a large log is checked.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AuditVerifyResult } from '../../common/console-api.js';
import { GatehouseError } from '../../common/errors.js';
import { verifyAuditFile, type FileVerifyReport } from '../audit/verify-file.js';
import { restoreYoungGenerationCap } from '../heap.js';

/** The compiled worker next to this module; absent when the sources run directly (vitest), where the check runs inline. */
const WORKER = fileURLToPath(new URL('./verify-worker.js', import.meta.url));

function inWorker(file: string, keychainPublicKey: string | undefined): Promise<FileVerifyReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: { file, ...(keychainPublicKey ? { keychainPublicKey } : {}) } });
    worker.once('online', restoreYoungGenerationCap);
    worker.once('message', (message: { ok: true; report: FileVerifyReport } | { ok: false; error: string }) => {
      if (message.ok) resolve(message.report);
      else reject(new GatehouseError('verify_failed', `the audit log could not be checked: ${message.error}`));
      void worker.terminate();
    });
    worker.once('error', (error) => reject(new GatehouseError('verify_failed', `the audit log could not be checked: ${error.message}`)));
  });
}

export async function verifyAudit(file: string, keychainPublicKey: string | undefined, signingNote?: string): Promise<AuditVerifyResult> {
  const started = performance.now();
  const report =
    existsSync(WORKER) && WORKER.endsWith('.js')
      ? await inWorker(file, keychainPublicKey)
      : verifyAuditFile(file, keychainPublicKey ? { keychainPublicKey } : {});
  const warnings = [...(signingNote ? [signingNote] : []), ...report.warnings];
  return {
    ok: report.ok,
    device: report.device,
    events: report.events,
    ...(report.firstSeq !== undefined ? { firstSeq: report.firstSeq } : {}),
    ...(report.lastSeq !== undefined ? { lastSeq: report.lastSeq } : {}),
    checkpoints: report.checkpoints,
    problems: report.problems.map((p) => ({ seq: p.seq, code: p.code, message: p.message })),
    warnings,
    elapsedMs: Math.round(performance.now() - started),
  };
}
