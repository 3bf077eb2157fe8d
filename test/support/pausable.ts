/**
 * An outage on demand for a test's loopback HTTP server (an identity provider, an OAuth server): `pause`
 * drops every connection and stops listening, `resume` listens again on the same port, so a client that
 * cached the address meets the outage and then the recovery as it would a real one.
 */
import type { Server } from 'node:http';

export interface Pausable {
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export function pausable(server: Server, port: number): Pausable {
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    pause: close,
    async resume() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port }, () => resolve());
      });
    },
    async stop() {
      if (server.listening) await close();
    },
  };
}
