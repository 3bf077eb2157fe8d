/**
 * Runs `verifyAuditFile` off the daemon's event loop (a large log takes seconds to check). Started
 * by verify.ts with the database file and the device key's public half; posts the report back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../../common/errors.js';
import { verifyAuditFile } from '../audit/verify-file.js';

const input = workerData as { file: string; keychainPublicKey?: string };
try {
  const report = verifyAuditFile(input.file, input.keychainPublicKey ? { keychainPublicKey: input.keychainPublicKey } : {});
  parentPort?.postMessage({ ok: true, report });
} catch (error) {
  parentPort?.postMessage({ ok: false, error: errorMessage(error) });
}
