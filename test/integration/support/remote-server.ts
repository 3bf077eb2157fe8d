/**
 * The misbehaving fixture in HTTP mode (test/fixtures/misbehaving-server.mjs `--http`): a well-behaved
 * remote Streamable HTTP server that a test can kill and start again. The caller stops the child.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../../fixtures/misbehaving-server.mjs', import.meta.url));

export interface RemoteFixture {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** What it wrote on stderr so far (its log: `wait started`, `wait cancelled: REASON`, ...). */
  stderr(): string;
}

/** Starts the fixture on `port` (0: any) as `name`; resolves with its URL once it listens. */
export async function startRemoteFixture(port: number, name = 'remote'): Promise<RemoteFixture> {
  const child = spawn(process.execPath, [FIXTURE, '--name', name, '--http', String(port)], { stdio: 'pipe' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the HTTP fixture did not start:\n${stderr}`)), 15_000);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', () => reject(new Error(`the HTTP fixture exited:\n${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}
