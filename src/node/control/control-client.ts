/** The CLI's side of the control API. */
import { createConnection } from 'node:net';
import type { ControlMethod, ControlParams, ControlResponse } from '../../common/control-api.js';
import { GatehouseError } from '../../common/errors.js';

export async function callControl<M extends ControlMethod>(path: string, method: M, params: ControlParams<M>, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new GatehouseError('timeout', `the daemon did not answer "${method}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(JSON.stringify({ id: 1, method, params }) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      socket.end();
      const response = JSON.parse(buffer.slice(0, nl)) as ControlResponse;
      if ('error' in response) reject(new GatehouseError(response.error.code, response.error.message));
      else resolve(response.result);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') {
        reject(new GatehouseError('daemon_not_running', 'Gatehouse is not running (start it with `gatehouse daemon`)'));
      } else reject(error);
    });
  });
}
