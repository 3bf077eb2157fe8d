/**
 * A stand-in for the desktop app's preload, for the console's browser tests: `window.gatehouse` as
 * main/bridge.ts builds it, answering from the test. Electron cannot run on these machines; the
 * pages it serves are the real console's. Answers the page sends are kept in `window.__answers`,
 * the app settings in `window.__settings`.
 */
export const bridgeStandIn = (question: unknown, inbox: unknown[] = []): string => `
    const answers = [];
    const settings = { openAtLogin: false };
    const reply = (result) => Promise.resolve({ ok: true, result });
    window.__answers = answers;
    window.__settings = settings;
    window.gatehouse = new Proxy({
      onEvent: () => () => {},
      status: () => reply({ version: 't', pid: 1, startedAt: new Date().toISOString(), user: 'me', policy: { mode: 'unmanaged' }, configFile: '', socketPath: '', servers: [], clients: [], audit: { file: '', records: 0 }, pendingQuestions: 1 }),
      'audit.query': () => reply({ events: [], head: 0, more: false }),
      'questions.list': () => reply({ questions: ${JSON.stringify(inbox)}, answerAt: ['desktop app'] }),
      human: {
        question: () => reply(${JSON.stringify(question)}),
        answer: (a) => (answers.push(a), reply({ recorded: true })),
        inbox: () => reply(${JSON.stringify(inbox)}),
        answerOne: (id, a) => (answers.push({ id, ...a }), reply({ recorded: true })),
      },
      app: { settings: () => reply({ ...settings }), setSettings: (s) => (Object.assign(settings, s), reply(s)) },
    }, { get: (t, k) => (k in t ? t[k] : () => Promise.resolve({ ok: false, error: { code: 'x', message: 'not in this stand-in' } })) });`;

/** A pairing question as the desk shows it in the app's popup: client "cursor", code QX7-42K, these servers offered. */
export function pairingQuestion(servers: { name: string; tools: string[] }[]) {
  return {
    id: 'q-pairing-0000001',
    askedAt: new Date().toISOString(),
    kind: 'pairing',
    title: 'Pair the client "cursor"?',
    facts: [
      { label: 'Client', value: 'cursor' },
      { label: 'Connects through', value: 'gatehouse connect (the local socket)' },
    ],
    code: 'QX7-42K',
    scope: { servers, expiryDays: [30, 7, 1] },
    deadline: new Date(Date.now() + 120_000).toISOString(),
  };
}
