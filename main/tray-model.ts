/**
 * What the tray shows, from the daemon's status: a short state, a tooltip, the count of what
 * waits for the person (approvals and pairing requests), and the menu's entries. Pure (unit-tested).
 */
import type { DaemonStatus } from '../src/common/status.js';
import type { UpdateState } from './updates.js';

export interface TrayModel {
  /** `ok`: everything runs; `attention`: something waits for the person; `error`: a server or the policy is in trouble. */
  state: 'starting' | 'ok' | 'attention' | 'error';
  tooltip: string;
  /** Approvals and pairing requests waiting for an answer. */
  waiting: number;
  /** Next to the icon where the platform shows text (macOS). */
  title: string;
  menu: { id: 'open' | 'approvals' | 'servers' | 'install-update' | 'quit'; label: string; enabled: boolean }[];
}

/** What the tray says of updates: one waiting to be installed, one held back by the organisation, a feed refused. */
function updateLine(update: UpdateState | undefined): string | undefined {
  if (!update) return undefined;
  if (update.kind === 'ready') return `update ${update.version} ready: restart to install`;
  if (update.kind === 'downloading') return `downloading update ${update.version}`;
  if (update.kind === 'held') return `update ${update.version} held: ${update.reason}${update.until ? ` until ${update.until.slice(0, 10)}` : ''}`;
  if (update.kind === 'refused') return `update refused: ${update.reason}`;
  return undefined;
}

export function trayModel(status: DaemonStatus | undefined, update?: UpdateState): TrayModel {
  if (!status) {
    return {
      state: 'starting',
      tooltip: 'Gatehouse is starting…',
      waiting: 0,
      title: '',
      menu: [
        { id: 'open', label: 'Open Gatehouse', enabled: true },
        { id: 'quit', label: 'Quit Gatehouse', enabled: true },
      ],
    };
  }
  // Every question waits on the desk (pendingQuestions); approvals are the ones about calls.
  const approvals = status.approvals?.pending.length ?? 0;
  const waiting = Math.max(status.pendingQuestions ?? 0, approvals);
  const questions = waiting - approvals;
  const enabled = status.servers.filter((s) => s.enabled);
  const ready = enabled.filter((s) => s.state === 'ready').length;
  const broken = enabled.filter((s) => s.state === 'crash-looping' || s.state === 'backing-off').length;
  const signIn = enabled.filter((s) => s.state === 'needs-sign-in').length;
  const failing = status.policy.state === 'fail-closed' || status.audit.healthy === false;
  const state = failing || broken > 0 ? 'error' : waiting > 0 || signIn > 0 ? 'attention' : 'ok';
  const parts = [`${ready} of ${enabled.length} servers ready`];
  if (signIn > 0) parts.push(`${signIn} server${signIn === 1 ? ' needs' : 's need'} you to sign in`);
  if (approvals > 0) parts.push(`${approvals} approval${approvals === 1 ? '' : 's'} waiting`);
  if (questions > 0) parts.push(`${questions} pairing request${questions === 1 ? '' : 's'} waiting`);
  if (status.policy.state === 'fail-closed') parts.push('policy failing closed');
  if (status.audit.healthy === false) parts.push('audit log not writable');
  parts.push(status.policy.mode === 'managed' ? `policy v${status.policy.version ?? '?'}` : 'unmanaged');
  const updating = updateLine(update);
  if (updating) parts.push(updating);
  return {
    state,
    tooltip: `Gatehouse — ${parts.join(' · ')}`,
    waiting,
    title: waiting > 0 ? String(waiting) : '',
    menu: [
      { id: 'open', label: 'Open Gatehouse', enabled: true },
      { id: 'approvals', label: waiting > 0 ? `Answer ${waiting} waiting question${waiting === 1 ? '' : 's'}…` : 'Approvals', enabled: true },
      { id: 'servers', label: `Servers (${ready}/${enabled.length} ready)`, enabled: true },
      ...(update?.kind === 'ready' ? [{ id: 'install-update' as const, label: `Restart to install Gatehouse ${update.version}`, enabled: true }] : []),
      { id: 'quit', label: 'Quit Gatehouse', enabled: true },
    ],
  };
}
