/**
 * `gatehouse://` links (issue 17): they open a screen or bring a waiting question's window forward,
 * and nothing else: no secret rides in them, and none answers a question.
 */
import { describe, expect, it } from 'vitest';
import { deepLinkInArgv, followDeepLink, parseDeepLink } from '../../main/deep-link.js';

const ID = 'AbCdEfGh_1234-xy';

describe('gatehouse:// links', () => {
  it("open a screen of the console, or one server's page", () => {
    expect(parseDeepLink('gatehouse://open/audit')).toEqual({ ok: true, link: { kind: 'screen', route: 'audit' } });
    expect(parseDeepLink('gatehouse://open/approvals/')).toEqual({ ok: true, link: { kind: 'screen', route: 'approvals' } });
    expect(parseDeepLink('gatehouse://open/servers/memory')).toEqual({ ok: true, link: { kind: 'screen', route: 'servers/memory' } });
  });

  it('name a question by its id only', () => {
    expect(parseDeepLink(`gatehouse://question/${ID}`)).toEqual({ ok: true, link: { kind: 'question', id: ID } });
  });

  it('refuse anything that could carry an answer, a secret or a path: queries, fragments, escapes, credentials, extra parts', () => {
    for (const hostile of [
      `gatehouse://question/${ID}?answer=approve`,
      `gatehouse://question/${ID}#approve`,
      `gatehouse://question/${ID}/approve`,
      `gatehouse://question/${ID}/once:sha256:${'a'.repeat(64)}`,
      'gatehouse://question/..%2F..%2Fetc',
      'gatehouse://me:code@open/audit',
      'gatehouse://open:8080/audit',
      'gatehouse://open/settings',
      'gatehouse://open/servers/Memory_1',
      'gatehouse://open/audit/export',
      'gatehouse://answer/approve',
      'gatehouse://open/audit\\..',
      `gatehouse://open/${'a'.repeat(250)}`,
      'https://example.com/open/audit',
      'GATEHOUSE://open/audit',
      '',
    ]) {
      expect(parseDeepLink(hostile).ok, hostile).toBe(false);
    }
  });

  it("bring a waiting question's window forward, or the inbox when it no longer waits, and never answer", () => {
    const done: string[] = [];
    const targets = {
      showScreen: (route: string) => done.push(`screen ${route}`),
      focusQuestion: (id: string) => (done.push(`focus ${id}`), id === ID),
      refused: (reason: string) => done.push(`refused: ${reason}`),
    };
    followDeepLink(`gatehouse://question/${ID}`, targets);
    followDeepLink('gatehouse://question/ZZZZZZZZZZZZZZZZ', targets);
    followDeepLink(`gatehouse://question/${ID}?answer=approve`, targets);
    expect(done).toEqual([
      `focus ${ID}`,
      'focus ZZZZZZZZZZZZZZZZ',
      'screen approvals',
      'refused: a gatehouse:// link has no query, fragment, escapes or credentials',
    ]);
    // The targets a link reaches have no way to answer: it is the whole surface.
    expect(Object.keys(targets).sort()).toEqual(['focusQuestion', 'refused', 'showScreen']);
  });

  it("is found on a second launch's command line (Windows, Linux)", () => {
    expect(deepLinkInArgv(['/opt/Gatehouse/gatehouse', '--no-sandbox', 'gatehouse://open/audit'])).toBe('gatehouse://open/audit');
    expect(deepLinkInArgv(['/opt/Gatehouse/gatehouse', '--hidden'])).toBeUndefined();
  });
});
