/**
 * The Cedar entities Gatehouse supplies for a request. Their shapes are what the shipped schema
 * (resources/policy/schema.cedarschema) declares; a bundle whose schema disagrees is refused when
 * it is compiled (see compile.ts), so these never fail at call time.
 *
 *   User::"<user id>"            in Role::"<role>" for each role the role mapping gives its groups
 *   Client::"<client name>"      { verified, transport }
 *   Server::"<server>"
 *   Tool::"<server>__<tool>"     in Server  { server, name, read_only, destructive, tags }  (from the catalog)
 *   Prompt::"<server>__<prompt>" in Server  { server, name }
 *   Resource::"<server>__<uri>"  in Server  { server, uri }  (uri may be a URI template)
 */
import type { Principal } from '../principal.js';
import { CEDAR_ACTIONS, type CatalogTool, type CedarEntity, type CedarRequest, type CedarValue, type EntityUid, type ItemKind } from './model.js';

const ENTITY_TYPE: Record<ItemKind, string> = { tool: 'Tool', prompt: 'Prompt', resource: 'Resource' };

export function itemUid(kind: ItemKind, server: string, name: string): EntityUid {
  return { type: ENTITY_TYPE[kind], id: `${server}__${name}` };
}

export function actionUid(kind: ItemKind): EntityUid {
  return { type: 'Action', id: CEDAR_ACTIONS[kind] };
}

export function principalEntities(principal: Principal, roles: readonly string[]): CedarEntity[] {
  const roleUids = roles.map((id) => ({ type: 'Role', id }));
  return [
    { uid: { type: 'User', id: principal.user.id }, attrs: {}, parents: roleUids },
    ...roleUids.map((uid) => ({ uid, attrs: {}, parents: [] })),
    {
      uid: { type: 'Client', id: principal.client.name },
      attrs: { verified: principal.client.verified, transport: principal.client.transport },
      parents: [],
    },
  ];
}

export function itemEntities(kind: ItemKind, server: string, name: string, tool: CatalogTool | undefined): CedarEntity[] {
  const serverUid = { type: 'Server', id: server };
  let attrs: Record<string, CedarValue>;
  if (kind === 'tool') {
    attrs = {
      server,
      name,
      read_only: tool?.readOnly ?? false,
      destructive: tool?.destructive ?? true,
      tags: [...(tool?.tags ?? [])],
    };
  } else if (kind === 'prompt') {
    attrs = { server, name };
  } else {
    attrs = { server, uri: name };
  }
  return [
    { uid: serverUid, attrs: {}, parents: [] },
    { uid: itemUid(kind, server, name), attrs, parents: [serverUid] },
  ];
}

export function clientRef(principal: Principal): CedarValue {
  return { __entity: { type: 'Client', id: principal.client.name } };
}

/** A complete request; `args` is left out for resources, whose action has no arguments. */
export function buildRequest(
  principal: Principal,
  roles: readonly string[],
  kind: ItemKind,
  server: string,
  name: string,
  tool: CatalogTool | undefined,
  args: Record<string, CedarValue> | undefined,
): CedarRequest {
  const context: Record<string, CedarValue> = { client: clientRef(principal) };
  if (args !== undefined && kind !== 'resource') context.args = args;
  return {
    principal: { type: 'User', id: principal.user.id },
    action: actionUid(kind),
    resource: itemUid(kind, server, name),
    context,
    entities: [...principalEntities(principal, roles), ...itemEntities(kind, server, name, tool)],
  };
}
