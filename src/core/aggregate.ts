/**
 * The aggregate view: every ready server's tools, prompts, resources and resource templates under
 * collision-free names, and the routes back from an exposed name to the server that owns it.
 *
 * - Tools and prompts: `<server>__<name>` in the aggregate; the server's own name in a single-server view.
 * - Resources keep their URI (clients resolve URIs themselves); where two servers list the same
 *   URI, the later server's copy is exposed as `gatehouse://<server>/<encoded uri>` and the route
 *   remembers the original.
 * - Resource templates keep their template; a read whose URI no list names is routed to the first
 *   server (in name order) with a template that matches it.
 */
import { isExposableToolName, joinName } from '../common/names.js';
import type { PromptItem, ResourceItem, ResourceTemplateItem, ToolItem, UpstreamLists } from './ports.js';

export interface Route {
  server: string;
  /** The server's own name (tools, prompts) or URI (resources). */
  name: string;
}

export interface AggregateView {
  tools: ToolItem[];
  prompts: PromptItem[];
  resources: ResourceItem[];
  resourceTemplates: ResourceTemplateItem[];
  toolRoutes: Map<string, Route>;
  promptRoutes: Map<string, Route>;
  resourceRoutes: Map<string, Route>;
  templates: { server: string; matcher: RegExp }[];
  /** The owner of each entry of `resourceTemplates`, index for index. */
  templateRoutes: Route[];
  /** Items a server offers that cannot be exposed (a name over the spec's limits), for the daemon log. */
  skipped: { server: string; kind: 'tool' | 'prompt'; name: string; reason: string }[];
  /** Changes when what a client would list changes; used to decide when to send `list_changed`. */
  fingerprints: { tools: string; prompts: string; resources: string };
}

const REWRITTEN_SCHEME = 'gatehouse://';

/** Builds one view. `single` names the server of a single-server view; otherwise the aggregate. */
export function buildView(servers: ReadonlyMap<string, UpstreamLists>, single?: string): AggregateView {
  const view: AggregateView = {
    tools: [],
    prompts: [],
    resources: [],
    resourceTemplates: [],
    toolRoutes: new Map(),
    promptRoutes: new Map(),
    resourceRoutes: new Map(),
    templates: [],
    templateRoutes: [],
    skipped: [],
    fingerprints: { tools: '', prompts: '', resources: '' },
  };
  const names = single === undefined ? [...servers.keys()].sort() : servers.has(single) ? [single] : [];
  for (const server of names) {
    const lists = servers.get(server)!;
    for (const tool of lists.tools) {
      const exposed = single === undefined ? joinName(server, tool.name) : tool.name;
      if (single === undefined && !isExposableToolName(server, tool.name)) {
        view.skipped.push({ server, kind: 'tool', name: tool.name, reason: `"${exposed}" is not a valid MCP tool name (1-128 of A-Z a-z 0-9 _ . -)` });
        continue;
      }
      if (view.toolRoutes.has(exposed)) {
        view.skipped.push({ server, kind: 'tool', name: tool.name, reason: `the server lists "${tool.name}" twice` });
        continue;
      }
      view.toolRoutes.set(exposed, { server, name: tool.name });
      view.tools.push({ ...tool, name: exposed });
    }
    for (const prompt of lists.prompts) {
      const exposed = single === undefined ? joinName(server, prompt.name) : prompt.name;
      if (view.promptRoutes.has(exposed)) {
        view.skipped.push({ server, kind: 'prompt', name: prompt.name, reason: `the server lists "${prompt.name}" twice` });
        continue;
      }
      view.promptRoutes.set(exposed, { server, name: prompt.name });
      view.prompts.push({ ...prompt, name: exposed });
    }
    for (const resource of lists.resources) {
      let uri = resource.uri;
      if (view.resourceRoutes.has(uri)) {
        if (view.resourceRoutes.get(uri)!.server === server) continue;
        uri = rewrittenUri(server, resource.uri);
      }
      view.resourceRoutes.set(uri, { server, name: resource.uri });
      view.resources.push(single === undefined ? { ...resource, uri, name: joinName(server, resource.name) } : resource);
    }
    for (const template of lists.resourceTemplates) {
      const matcher = templateMatcher(template.uriTemplate);
      if (matcher) view.templates.push({ server, matcher });
      view.templateRoutes.push({ server, name: template.uriTemplate });
      view.resourceTemplates.push(single === undefined ? { ...template, name: joinName(server, template.name) } : template);
    }
  }
  view.fingerprints = {
    tools: fingerprint(view.tools),
    prompts: fingerprint(view.prompts),
    resources: fingerprint([...view.resources, ...view.resourceTemplates]),
  };
  return view;
}

/** Finds the server behind a resource URI a client wants to read or subscribe to. */
export function routeResource(view: AggregateView, uri: string): Route | undefined {
  const listed = view.resourceRoutes.get(uri);
  if (listed) return listed;
  if (uri.startsWith(REWRITTEN_SCHEME)) {
    const rest = uri.slice(REWRITTEN_SCHEME.length);
    const slash = rest.indexOf('/');
    if (slash > 0) {
      const server = rest.slice(0, slash);
      try {
        return { server, name: decodeURIComponent(rest.slice(slash + 1)) };
      } catch {
        return undefined;
      }
    }
  }
  const template = view.templates.find((t) => t.matcher.test(uri));
  return template ? { server: template.server, name: uri } : undefined;
}

export function rewrittenUri(server: string, uri: string): string {
  return `${REWRITTEN_SCHEME}${server}/${encodeURIComponent(uri)}`;
}

/**
 * A matcher for an RFC 6570 template, good enough for routing: each `{expression}` matches one
 * path segment, `{+var}`/`{#var}` match anything, `{?a,b}`/`{&a}` match an optional query part.
 */
export function templateMatcher(template: string): RegExp | undefined {
  if (template.length > 2048) return undefined;
  let pattern = '^';
  let last = 0;
  const expr = /\{([+#./;?&]?)([^}]*)\}/g;
  for (let m = expr.exec(template); m; m = expr.exec(template)) {
    pattern += escapeRegExp(template.slice(last, m.index));
    const op = m[1];
    if (op === '+' || op === '#') pattern += '.*';
    else if (op === '?' || op === '&') pattern += '(?:[?&].*)?';
    else pattern += '[^/?#]*';
    last = m.index + m[0].length;
  }
  pattern += escapeRegExp(template.slice(last)) + '$';
  try {
    return new RegExp(pattern);
  } catch {
    return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Cheap, order-sensitive digest of a list for change detection (not security). */
function fingerprint(items: unknown[]): string {
  const text = JSON.stringify(items);
  let h1 = 0x811c9dc5;
  let h2 = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = (h2 * 31 + c) | 0;
  }
  return `${text.length}:${(h1 >>> 0).toString(16)}:${(h2 >>> 0).toString(16)}`;
}
