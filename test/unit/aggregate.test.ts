import { describe, expect, it } from 'vitest';
import { buildView, routeResource, rewrittenUri, templateMatcher } from '../../src/core/aggregate.js';
import type { UpstreamLists } from '../../src/core/ports.js';

function lists(partial: Partial<UpstreamLists>): UpstreamLists {
  return { tools: [], resources: [], resourceTemplates: [], prompts: [], ...partial };
}

describe('the aggregate catalog', () => {
  it('exposes every server tool as <server>__<tool>, servers in name order, with everything else of the tool unchanged', () => {
    const view = buildView(
      new Map([
        ['memory', lists({ tools: [{ name: 'read_graph', description: 'Reads', inputSchema: { type: 'object' } }] })],
        ['files', lists({ tools: [{ name: 'read_file' }] })],
      ]),
    );
    expect(view.tools.map((t) => t.name)).toEqual(['files__read_file', 'memory__read_graph']);
    expect(view.tools[1]).toEqual({ name: 'memory__read_graph', description: 'Reads', inputSchema: { type: 'object' } });
    expect(view.toolRoutes.get('memory__read_graph')).toEqual({ server: 'memory', name: 'read_graph' });
  });

  it('keeps two servers tools of the same name apart', () => {
    const view = buildView(
      new Map([
        ['a', lists({ tools: [{ name: 'search' }] })],
        ['b', lists({ tools: [{ name: 'search' }] })],
      ]),
    );
    expect(view.toolRoutes.get('a__search')?.server).toBe('a');
    expect(view.toolRoutes.get('b__search')?.server).toBe('b');
  });

  it('routes a tool whose own name contains the separator to the right server', () => {
    const view = buildView(new Map([['crm', lists({ tools: [{ name: 'contacts__search' }] })]]));
    expect(view.toolRoutes.get('crm__contacts__search')).toEqual({ server: 'crm', name: 'contacts__search' });
  });

  it('leaves out and reports a tool whose joined name breaks the spec name rules', () => {
    const view = buildView(new Map([['srv', lists({ tools: [{ name: 'x'.repeat(126) }, { name: 'has space' }, { name: 'fine' }] })]]));
    expect(view.tools.map((t) => t.name)).toEqual(['srv__fine']);
    expect(view.skipped.map((s) => s.name)).toEqual(['x'.repeat(126), 'has space']);
  });

  it('shows a single server under its own names', () => {
    const view = buildView(
      new Map([
        ['memory', lists({ tools: [{ name: 'read_graph' }], prompts: [{ name: 'p' }] })],
        ['files', lists({ tools: [{ name: 'read_file' }] })],
      ]),
      'memory',
    );
    expect(view.tools.map((t) => t.name)).toEqual(['read_graph']);
    expect(view.prompts.map((p) => p.name)).toEqual(['p']);
    expect(view.toolRoutes.get('read_graph')).toEqual({ server: 'memory', name: 'read_graph' });
  });

  it('is empty for a single-server view of a server that is not ready', () => {
    expect(buildView(new Map(), 'memory').tools).toEqual([]);
  });

  it('keeps resource URIs, and rewrites the second of two servers listing the same URI so both stay readable', () => {
    const view = buildView(
      new Map([
        ['a', lists({ resources: [{ uri: 'file:///readme', name: 'readme' }] })],
        ['b', lists({ resources: [{ uri: 'file:///readme', name: 'readme' }] })],
      ]),
    );
    expect(view.resources.map((r) => r.uri)).toEqual(['file:///readme', rewrittenUri('b', 'file:///readme')]);
    expect(routeResource(view, 'file:///readme')).toEqual({ server: 'a', name: 'file:///readme' });
    expect(routeResource(view, rewrittenUri('b', 'file:///readme'))).toEqual({ server: 'b', name: 'file:///readme' });
  });

  it('routes a read of an unlisted URI to the first server whose template matches it', () => {
    const view = buildView(
      new Map([
        ['a', lists({ resourceTemplates: [{ uriTemplate: 'test://static/resource/{id}', name: 't' }] })],
        ['b', lists({ resourceTemplates: [{ uriTemplate: 'notes://{+path}', name: 'n' }] })],
      ]),
    );
    expect(routeResource(view, 'test://static/resource/7')).toEqual({ server: 'a', name: 'test://static/resource/7' });
    expect(routeResource(view, 'notes://a/b/c.md')).toEqual({ server: 'b', name: 'notes://a/b/c.md' });
    expect(routeResource(view, 'other://x')).toBeUndefined();
    expect(view.templateRoutes.map((r) => r.server)).toEqual(['a', 'b']);
  });

  it('changes its fingerprint only when what a client would list changes', () => {
    const one = buildView(new Map([['a', lists({ tools: [{ name: 't' }] })]]));
    const same = buildView(new Map([['a', lists({ tools: [{ name: 't' }] })]]));
    const changed = buildView(new Map([['a', lists({ tools: [{ name: 't', description: 'new' }] })]]));
    expect(same.fingerprints).toEqual(one.fingerprints);
    expect(changed.fingerprints.tools).not.toBe(one.fingerprints.tools);
    expect(changed.fingerprints.prompts).toBe(one.fingerprints.prompts);
  });
});

describe('URI template matching for routing', () => {
  it('matches one path segment per simple expression and anything for reserved expansion', () => {
    expect(templateMatcher('a://{x}/b')!.test('a://1/b')).toBe(true);
    expect(templateMatcher('a://{x}/b')!.test('a://1/2/b')).toBe(false);
    expect(templateMatcher('a://{+x}')!.test('a://1/2/3')).toBe(true);
    expect(templateMatcher('a://r{?q,n}')!.test('a://r?q=1&n=2')).toBe(true);
  });

  it('treats template text as literal, not as a regular expression', () => {
    expect(templateMatcher('a://x.y/{id}')!.test('a://xzy/1')).toBe(false);
  });
});
