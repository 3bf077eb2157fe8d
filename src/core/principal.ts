import type { ClientScope } from './identity/client-scope.js';

/** Who is calling: the user and the client (IDE, agent) acting for them. */
export interface Principal {
  user: {
    id: string;
    source: 'os' | 'oidc';
    displayName: string;
    /** Group claims from the identity provider; a policy bundle's role mapping turns them into roles. */
    groups: string[];
    roles: string[];
  };
  client: {
    id: string;
    name: string;
    verified: boolean;
    transport: 'socket' | 'http' | 'in-process';
    /** What the person allowed this client when pairing it; absent means the user's full rights. */
    scope?: ClientScope;
  };
}
