/** Who is calling: the user and the client (IDE, agent) acting for them. */
export interface Principal {
  user: { id: string; source: 'os' | 'oidc'; displayName: string; roles: string[] };
  client: { id: string; name: string; verified: boolean; transport: 'socket' | 'http' | 'in-process' };
}
